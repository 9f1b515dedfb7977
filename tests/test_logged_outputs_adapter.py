"""The logged-outputs adapter against real files (CSV, TSV, JSON lines, Parquet)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from audit_sdk.adapters import logged_outputs_adapter as logged_module
from audit_sdk.adapters.logged_outputs_adapter import LoggedOutputsAdapter
from audit_sdk.adapters.template_profile_writer import TemplateProfileWriter

from audit_sdk.errors import AdapterError, DataValidationError, MissingCapabilityError
from audit_sdk.interfaces import GenerationParams
from audit_sdk.plugin_host import PluginHost, PluginSettings
from audit_sdk.profile_pipeline import PROFILE_COLUMNS, generate_profiles
from audit_sdk.profile_prompts import prompt_sha256

from .profile_fixtures import synthetic_samples

PROFILES_CSV = """user_id,model,window,prompt,text,rating,share:rock,share_country:US
1,gpt,30d,prompt one,Loves rock.,4,0.8,0.5
2,gpt,30d,prompt two,Mostly jazz.,2.5,0.1,
1,gpt,365d,,Rock and folk.,,0.6,0.4
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def adapter(path: Path, **params: object) -> LoggedOutputsAdapter:
    return LoggedOutputsAdapter(
        LoggedOutputsAdapter.Params.model_validate({"path": str(path), **params})
    )


def test_logged_profiles_come_back_in_the_pipeline_format(tmp_path: Path) -> None:
    logged = adapter(write(tmp_path, "profiles.csv", PROFILES_CSV))
    profiles = logged.logged_profiles()
    assert list(profiles.columns)[: len(PROFILE_COLUMNS)] == list(PROFILE_COLUMNS)
    assert list(profiles.columns)[len(PROFILE_COLUMNS) :] == [
        "rating",
        "share:rock",
        "share_country:US",
    ]
    assert profiles["user_id"].tolist() == ["1", "2", "1"]
    assert profiles["text"].tolist() == ["Loves rock.", "Mostly jazz.", "Rock and folk."]
    assert profiles["prompt_sha256"].tolist() == [
        prompt_sha256("prompt one"),
        prompt_sha256("prompt two"),
        None,
    ]
    assert profiles["rating"].tolist()[:2] == [4.0, 2.5]
    assert pd.isna(profiles["rating"].iloc[2])
    assert profiles["share:rock"].tolist() == [0.8, 0.1, 0.6]
    assert set(profiles["adapter"]) == {"logged_outputs"}
    assert profiles["error"].isna().all()
    assert logged.supports("generate")
    assert not logged.supports("recommend")
    assert logged.describe()["rows"] == 3


def test_generate_answers_logged_prompts_exactly(tmp_path: Path) -> None:
    logged = adapter(write(tmp_path, "profiles.csv", PROFILES_CSV))
    assert logged.generate(["prompt two", "prompt one"], params=GenerationParams()) == [
        "Mostly jazz.",
        "Loves rock.",
    ]
    with pytest.raises(AdapterError, match=r"1 of 2 prompts are not in .*prompt 2, sha256"):
        logged.generate(["prompt one", "prompt one "], params=GenerationParams())


def test_recommendation_logs_in_both_list_forms(tmp_path: Path, caplog) -> None:
    path = write(
        tmp_path,
        "recs.tsv",
        'user_id\tmodel\titems\n7\trec\t["b", "a", "c"]\n8\trec\tx|y\n9\trec\t[12, 13]\n',
    )
    logged = adapter(path)
    assert logged.supports("recommend")
    assert not logged.supports("generate")
    with caplog.at_level(logging.WARNING):
        recs = logged.recommend(["7", "8", "9", "10"], k=2)
    assert recs.to_dict("list") == {
        "user_id": ["7", "7", "8", "8", "9", "9"],
        "rank": [1, 2, 1, 2, 1, 2],
        "item_id": ["b", "a", "x", "y", "12", "13"],
        "score": [1.0, 0.5, 1.0, 0.5, 1.0, 0.5],
    }
    assert "1 of 4 users have no logged list (e.g. 10)" in caplog.text
    with pytest.raises(MissingCapabilityError):
        logged.generate(["x"], params=GenerationParams())
    assert logged.logged_profiles().empty


def test_jsonl_and_parquet_hold_the_same_log(tmp_path: Path) -> None:
    records = [
        {"user_id": 1, "model": "m", "window": "30d", "items": ["a", "b"], "rating": 3},
        {"user_id": 2, "model": "m", "window": "30d", "items": ["c"], "rating": None},
    ]
    jsonl = write(tmp_path, "log.jsonl", "\n".join(json.dumps(r) for r in records) + "\n\n")
    parquet = tmp_path / "log.parquet"
    pd.DataFrame(records).to_parquet(parquet)
    for path in (jsonl, parquet):
        recs = adapter(path).recommend(["1", "2"], k=5)
        assert recs["item_id"].tolist() == ["a", "b", "c"], path.suffix
        assert recs["user_id"].tolist() == ["1", "1", "2"], path.suffix


def test_several_models_need_a_choice(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "two.csv",
        "user_id,model,window,items\n1,a,all,x|y\n1,b,all,y|z\n2,a,all,z\n",
    )
    with pytest.raises(AdapterError, match=r"holds 2 models \(a, b\); set params\.model"):
        adapter(path).recommend(["1"], k=2)
    assert adapter(path, model="b").recommend(["1"], k=2)["item_id"].tolist() == ["y", "z"]
    assert adapter(path).models() == ["a", "b"]
    assert adapter(path, model="a").fingerprint() != adapter(path, model="b").fingerprint()
    with pytest.raises(
        DataValidationError, match=r"no rows for model 'c'.*models in the file: a, b"
    ):
        adapter(path, model="c").load()


def test_several_windows_need_a_choice(tmp_path: Path) -> None:
    path = write(tmp_path, "w.csv", "user_id,model,window,items\n1,a,30d,x\n1,a,365d,y\n")
    with pytest.raises(AdapterError, match=r"2 windows \(30d, 365d\); set params\.window"):
        adapter(path).recommend(["1"], k=1)
    assert adapter(path, window="365d").recommend(["1"], k=1)["item_id"].tolist() == ["y"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "a.csv",
            "user,model,text\n1,m,t\n",
            r"a\.csv: missing column\(s\) user_id \(found: user, model, text\)",
        ),
        ("b.csv", "user_id,model,window\n1,m,30d\n", r"b\.csv: needs a column 'text'.*or 'items'"),
        (
            "c.csv",
            'user_id,model,items\n1,m,"[""a"", ""b"""\n',
            r"c\.csv, row 1, column 'items': not a valid JSON list",
        ),
        (
            "d.csv",
            "user_id,model,text\n1,m,ok\n,m,no user\n",
            r"d\.csv, row 2, column 'user_id': user_id is empty",
        ),
        (
            "e.csv",
            "user_id,model,window,text\n1,m,30d,a\n2,m,30d,b\n1,m,30d,c\n",
            r"e\.csv, row 3: user '1', model 'm', window '30d' appears 2 times \(rows 1, 3\)",
        ),
        (
            "f.csv",
            "user_id,model,text,rating\n1,m,a,4\n2,m,b,great\n",
            r"f\.csv, row 2, column 'rating': 'great' is not a number",
        ),
        (
            "g.csv",
            "user_id,model,text,share:rock\n1,m,a,1.5\n",
            r"g\.csv, row 1, column 'share:rock': a share must lie in \[0, 1\]",
        ),
        (
            "h.csv",
            "user_id,model,text,items\n1,m,,\n",
            r"h\.csv, row 1, column 'text': the row has neither text nor items",
        ),
        (
            "i.csv",
            'user_id,model,items\n1,m,"[""a"", ""a""]"\n',
            r"i\.csv, row 1, column 'items': item 'a' appears twice",
        ),
        (
            "j.csv",
            'user_id,model,items\n1,m,"[[1], 2]"\n',
            r"j\.csv, row 1, column 'items': item ids must be strings or integers",
        ),
        (
            "k.jsonl",
            '{"user_id": 1, "model": "m", "text": "a"}\n{"user_id": 2,\n',
            r"k\.jsonl, row 2: not valid JSON",
        ),
        (
            "l.txt",
            "user_id,model,text\n1,m,a\n",
            r"l\.txt: cannot tell the format from the extension '\.txt'",
        ),
        ("m.csv", "user_id,model,text\n", r"m\.csv: the file holds no rows"),
    ],
)
def test_bad_files_name_file_row_and_column(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(DataValidationError, match=message):
        adapter(path).load()


def test_undecodable_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("user_id,model,text\n1,m,Bj\xf6rk\n".encode("latin-1"))
    with pytest.raises(
        DataValidationError, match=r"latin\.csv, row 1: cannot decode byte 0xf6 at line 2"
    ):
        adapter(path).load()
    with pytest.raises(DataValidationError, match=r"absent\.csv: no such logged-outputs file"):
        adapter(tmp_path / "absent.csv").load()


def test_a_pipeline_run_logged_and_replayed(tmp_path: Path) -> None:
    """A team logs its generator's outputs; the logged adapter replays them through the
    pipeline with the very same prompts."""
    world, samples = synthetic_samples()
    original = generate_profiles(samples, world.catalog, {"writer": TemplateProfileWriter()})
    log = original[["user_id", "model", "window", "prompt", "text"]]
    path = tmp_path / "log.jsonl"
    path.write_text(log.to_json(orient="records", lines=True), encoding="utf-8")
    replay = adapter(path)
    replayed = generate_profiles(samples, world.catalog, {"writer": replay})
    assert replayed["text"].tolist() == original["text"].tolist()
    assert replayed["error"].isna().all()
    from_log = replay.logged_profiles()
    assert from_log[["user_id", "window", "text"]].values.tolist() == (
        original[["user_id", "window", "text"]].astype(str).values.tolist()
    )


def test_adapter_registers_through_the_hook() -> None:
    host = PluginHost(PluginSettings(autoload=False))
    host.register_plugin(logged_module, name="logged_outputs_adapter")
    assert host.get("adapter", "logged_outputs").cls is LoggedOutputsAdapter
