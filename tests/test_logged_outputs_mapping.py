"""Logged outputs in a team's own column names: mapping, share rules, typed columns, row report,
and the dataset a log implies."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from audit_sdk.adapters.logged_outputs_adapter import (
    LoggedOutputsAdapter,
    LoggedOutputsParams,
    read_logged_outputs,
)
from pydantic import ValidationError

from audit_sdk.errors import DataValidationError


def _write(tmp_path: Path, frame: pd.DataFrame, name: str = "log.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _log() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "uid": ["a", "b", "c"],
            "llm": ["m1", "m1", "m2"],
            "profile": ["likes rock", "likes jazz", "likes pop"],
            "stars": ["4", "5", "3.5"],
            "rock": [0.5, 0.1, 0.2],
            "jazz": [0.3, 0.8, 0.1],
            "pop": [0.2, 0.1, 0.7],
            "note": ["x", "y", "z"],
            "cty_US": [10, 50, 90],
            "latency": ["120", "80", "95"],
        }
    )


def test_columns_mapping_and_share_rules(tmp_path: Path) -> None:
    path = _write(tmp_path, _log())
    table = read_logged_outputs(
        path,
        columns={"user_id": "uid", "model": "llm", "text": "profile", "rating": "stars"},
        share_columns=[
            {"between": ["rock", "pop"]},
            {"regex": "cty_(?P<level>[A-Z]+)", "family": "country", "percent": True},
        ],
    )
    assert list(table["user_id"]) == ["a", "b", "c"]
    assert table["rating"].tolist() == [4.0, 5.0, 3.5]
    assert table["share:jazz"].tolist() == [0.3, 0.8, 0.1]
    assert table["share_country:US"].tolist() == [0.1, 0.5, 0.9]
    assert table["latency"].dtype.kind == "f"  # numbers written as text are numbers
    assert table["note"].tolist() == ["x", "y", "z"]  # text stays text
    assert set(table["window"]) == {"all"}


def test_prefix_rule_and_a_file_of_one_model(tmp_path: Path) -> None:
    frame = _log().drop(columns=["llm"]).rename(columns={"rock": "g_rock", "jazz": "g_jazz"})
    path = _write(tmp_path, frame)
    table = read_logged_outputs(
        path,
        columns={"user_id": "uid", "text": "profile"},
        share_columns=[{"prefix": "g_"}],
        model_name="acme",
    )
    assert set(table["model"]) == {"acme"}
    assert {"share:rock", "share:jazz"} <= set(table.columns)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"columns": {"user_id": "who"}}, "columns.user_id names 'who', which the file"),
        ({"share_columns": [{"between": ["pop", "rock"]}]}, "'rock' comes before 'pop'"),
        ({"share_columns": [{"between": ["rock", "blues"]}]}, "no column 'blues'"),
        ({"share_columns": [{"prefix": "zz_"}]}, "matches no column"),
        ({"share_columns": [{"columns": ["cty_US"]}]}, "a share must lie in [0, 1], got 10"),
        ({"numeric_columns": ["note"]}, "'x' is not a number"),
    ],
)
def test_mapping_errors_name_the_column(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    path = _write(tmp_path, _log())
    base: dict[str, object] = {"columns": {"user_id": "uid", "model": "llm", "text": "profile"}}
    if "columns" in options:
        base = {}
    with pytest.raises(DataValidationError) as info:
        read_logged_outputs(path, **{**base, **options})
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_a_rule_needs_exactly_one_selector() -> None:
    with pytest.raises(ValidationError, match="exactly one of between, prefix, regex, columns"):
        LoggedOutputsParams(path="x.csv", share_columns=[{"prefix": "a", "regex": "b"}])


def test_missing_columns_hint_at_the_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, _log())
    with pytest.raises(DataValidationError, match=r"missing column\(s\) user_id, model") as info:
        read_logged_outputs(path)
    assert "params.columns" in str(info.value)


def test_rows_kept_and_dropped_are_reported(tmp_path: Path) -> None:
    frame = _log()
    frame.loc[1, "profile"] = None
    frame.loc[2, "uid"] = None
    path = _write(tmp_path, frame)
    params = {"path": str(path), "columns": {"user_id": "uid", "model": "llm", "text": "profile"}}
    with pytest.raises(DataValidationError, match="drop_incomplete") as info:
        LoggedOutputsAdapter(LoggedOutputsParams(**params)).load()
    assert "row 2" in str(info.value)
    adapter = LoggedOutputsAdapter(LoggedOutputsParams(**params, drop_incomplete=True))
    report = adapter.row_report()
    assert (report.rows_read, report.rows_kept) == (3, 1)
    assert report.dropped == {"neither text nor items": 1, "no user_id": 1}
    assert "1 of 3 rows kept" in report.summary()
    assert adapter.describe()["rows_report"] == report.summary()


def test_a_log_that_matches_no_user_of_the_data_fails(tmp_path: Path) -> None:
    path = _write(tmp_path, _log())
    adapter = LoggedOutputsAdapter(
        LoggedOutputsParams(
            path=str(path), columns={"user_id": "uid", "model": "llm", "text": "profile"}
        )
    )
    with pytest.raises(DataValidationError, match="none of the 3 logged rows belongs") as info:
        adapter.check_users(["u1", "u2"])
    assert "'u1'" in str(info.value) and "'a'" in str(info.value)
    report = adapter.check_users(["a", "b", "zz"])
    assert report.rows_kept == 2
    assert report.dropped == {"user not in the audit's data": 1}
    assert report.models == {"m1": 2}


def test_logged_dataset_joins_users_and_longterm_tables(tmp_path: Path) -> None:
    log = _write(tmp_path, _log())
    users = _write(
        tmp_path, pd.DataFrame({"uid": ["a", "b", "x"], "age": [20, 30, 40]}), "users.csv"
    )
    longterm = _write(
        tmp_path, pd.DataFrame({"uid": ["a", "c"], "lt_rock": [50.0, 5.0]}), "longterm.csv"
    )
    adapter = LoggedOutputsAdapter(
        LoggedOutputsParams(
            path=str(log),
            columns={"user_id": "uid", "model": "llm", "text": "profile"},
            users=str(users),
            user_columns={"user_id": "uid"},
            longterm=str(longterm),
            longterm_columns=[{"prefix": "lt_", "percent": True}],
        )
    )
    dataset = adapter.logged_dataset()
    frame = dataset.users.frame
    assert list(frame.index) == ["a", "b", "c"]  # the log's users; x is not in the log
    assert frame.loc["a", "age"] == 20 and pd.isna(frame.loc["c", "age"])
    assert frame["longterm_share:rock"].tolist()[0] == 0.5
    assert pd.isna(frame.loc["b", "longterm_share:rock"])
    assert any("2 of 3 logged users found" in n for n in dataset.metadata["notes"])
    assert len(dataset.interactions) == 0


def test_logged_dataset_items_come_from_the_logged_lists(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"user_id": ["a", "b"], "model": ["m", "m"], "items": ["i1|i2", '["i2", "i3"]']}
    )
    adapter = LoggedOutputsAdapter(LoggedOutputsParams(path=str(_write(tmp_path, frame))))
    catalog = adapter.logged_dataset().catalog.frame
    assert sorted(catalog.index) == ["i1", "i2", "i3"]


def test_the_loader_serves_the_same_dataset(tmp_path: Path) -> None:
    from audit_sdk.adapters.logged_outputs_adapter import LoggedOutputsLoader

    frame = pd.DataFrame({"user_id": ["a", "b"], "model": ["m", "m"], "text": ["t", "u"]})
    params = LoggedOutputsParams(path=str(_write(tmp_path, frame)))
    assert list(LoggedOutputsLoader(params).load().users.frame.index) == ["a", "b"]


def test_fitting_to_data_without_the_logged_users_is_a_clear_error(tmp_path: Path) -> None:
    from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world

    frame = pd.DataFrame({"user_id": ["zz1", "zz2"], "model": ["m", "m"], "text": ["t", "u"]})
    adapter = LoggedOutputsAdapter(LoggedOutputsParams(path=str(_write(tmp_path, frame))))
    world = generate_world(SyntheticWorldParams(n_users=50, seed=0))
    with pytest.raises(DataValidationError, match="none of the 2 logged rows belongs"):
        adapter.fit(world)


def test_ids_that_are_json_objects_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"user_id": {"id": 1}, "model": "m", "text": "t"}\n')
    with pytest.raises(DataValidationError, match="user_id must be text or an integer, not dict"):
        read_logged_outputs(path)
