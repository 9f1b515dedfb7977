"""The generic CSV/TSV/Parquet/JSONL loader: formats, column mapping, defaults, metadata."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from audit_sdk.data import builtin_loaders
from audit_sdk.data.hetrec_loader import HetRecLastfmLoader
from audit_sdk.data.synthetic_world import SyntheticWorldLoader
from audit_sdk.data.tabular_loader import TabularLoader, TabularParams, detect_format
from audit_sdk.plugin_registry import PluginRegistry

EVENTS = pd.DataFrame(
    {
        "listener": ["u1", "u1", "u2", "u2", "u3"],
        "song": ["t1", "t2", "t1", "t3", "t2"],
        "count": [3.0, 1.0, 2.0, 5.0, 1.0],
        "ts": [1735725600000 + i * 86_400_000 for i in range(5)],
        "secs": [200.0, 12.5, 180.0, 240.0, 31.0],
        "stars": [4.0, np.nan, 3.0, 5.0, 2.0],
    }
)
MAPPING = {
    "user_id": "listener",
    "item_id": "song",
    "plays": "count",
    "timestamp": "ts",
    "duration_s": "secs",
    "rating": "stars",
}
TRACKS = pd.DataFrame(
    {
        "track": ["t1", "t2", "t3"],
        "name": ["One", "Two", "Three"],
        "by": ["Ana", "Ben", "Ana"],
        "tags": ["Pop;Dance", "", "jazz"],
        "cc": ["SE", "", "US"],
        "year": ["1999", "", "2021"],
        "label": ["L1", "L2", "L3"],
    }
)
CATALOG_MAPPING = {
    "item_id": "track",
    "title": "name",
    "artist": "by",
    "genres": "tags",
    "country": "cc",
    "release_year": "year",
}


def write(frame: pd.DataFrame, path, fmt: str) -> str:
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        with open(path, "w", encoding="utf-8") as handle:
            for record in frame.to_dict(orient="records"):
                clean = {
                    k: (None if isinstance(v, float) and np.isnan(v) else v)
                    for k, v in record.items()
                }
                handle.write(json.dumps(clean) + "\n")
    return str(path)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "jsonl"])
def test_every_format_gives_the_same_tables(tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    reference = TabularLoader(
        TabularParams(
            interactions=write(EVENTS, tmp_path / "ref.csv", "csv"),
            catalog=write(TRACKS, tmp_path / "ref_tracks.csv", "csv"),
            columns=MAPPING,
            catalog_columns=CATALOG_MAPPING,
            genre_separator=";",
            timestamp_unit="ms",
        )
    ).load()
    dataset = TabularLoader(
        TabularParams(
            interactions=write(EVENTS, tmp_path / f"streams.{fmt}", fmt),
            catalog=write(TRACKS.astype(str), tmp_path / f"tracks.{fmt}", fmt),
            columns=MAPPING,
            catalog_columns=CATALOG_MAPPING,
            genre_separator=";",
            timestamp_unit="ms",
        )
    ).load()
    assert dataset.name == "streams"
    assert dataset.fingerprint() == reference.fingerprint()
    frame = dataset.interactions.frame
    assert frame["plays"].tolist() == [3.0, 1.0, 2.0, 5.0, 1.0]
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2025-01-01T10:00:00Z")
    assert frame["rating"].isna().tolist() == [False, True, False, False, False]
    catalog = dataset.catalog.frame
    assert catalog.index.name == "item_id"
    assert catalog.loc["t1", "genres"] == ("pop", "dance")
    assert catalog.loc["t2", "genres"] == ()
    assert catalog.loc["t1", "country"] == "SE"
    assert pd.isna(catalog.loc["t2", "country"])
    assert str(catalog["release_year"].dtype) == "Int64"
    assert catalog["release_year"].tolist()[0] == 1999
    assert pd.isna(catalog["release_year"].iloc[1])
    assert catalog.loc["t3", "label"] == "L3"  # unmapped columns are kept


def test_defaults_without_catalog_plays_or_users(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id\nu1,a\nu1,a\nu2,b\n", encoding="utf-8")
    dataset = TabularLoader(TabularParams(interactions=str(path))).load()
    assert dataset.interactions.frame["plays"].tolist() == [1.0, 1.0, 1.0]
    assert dataset.interactions.user_item_plays().set_index(["user_id", "item_id"])[
        "plays"
    ].to_dict() == {("u1", "a"): 2.0, ("u2", "b"): 1.0}
    catalog = dataset.catalog.frame
    assert list(catalog.index) == ["a", "b"]
    assert catalog.loc["a", "title"] == "a"
    assert catalog.loc["a", "artist"] == "unknown"
    assert any("minimal catalog" in note for note in dataset.metadata["notes"])
    assert list(dataset.users.frame.index) == ["u1", "u2"]
    assert dataset.metadata["sources"]["interactions"] == str(path.resolve())
    assert len(dataset.metadata["sha256"]["interactions"]) == 64
    assert not dataset.interactions.has_timestamps


@pytest.mark.parametrize(
    ("unit", "values", "expected"),
    [
        ("s", ["1735725600", "1735729200"], "2025-01-01T10:00:00Z"),
        ("ms", ["1735725600000", "1735729200000"], "2025-01-01T10:00:00Z"),
        ("iso", ["2025-01-01T11:00:00+01:00", "2025-01-01T11:00:00Z"], "2025-01-01T10:00:00Z"),
        (None, ["1735725600", "1735729200"], "2025-01-01T10:00:00Z"),
        (None, ["1735725600000", "1735729200000"], "2025-01-01T10:00:00Z"),
        (None, ["2025-01-01 10:00:00", "2025-01-01 11:00:00"], "2025-01-01T10:00:00Z"),
    ],
)
def test_timestamp_units(tmp_path, unit, values, expected):
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,item_id,timestamp\n" + "".join(f"u1,t{i},{v}\n" for i, v in enumerate(values)),
        encoding="utf-8",
    )
    dataset = TabularLoader(TabularParams(interactions=str(path), timestamp_unit=unit)).load()
    stamps = dataset.interactions.frame["timestamp"]
    assert str(stamps.dtype) == "datetime64[ns, UTC]"
    assert stamps.iloc[0] == pd.Timestamp(expected)


def test_users_attributes_are_typed(tmp_path):
    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id\n7,a\n8,b\n", encoding="utf-8")
    users = tmp_path / "users.csv"
    users.write_text("uid,age,country,score\n7,34,NA,0.5\n8,,DE,1.5\n", encoding="utf-8")
    dataset = TabularLoader(
        TabularParams(interactions=str(events), users=str(users), user_columns={"user_id": "uid"})
    ).load()
    frame = dataset.users.frame
    assert list(frame.index) == ["7", "8"]
    assert frame.index.name == "user_id"
    assert str(frame["age"].dtype) == "Int64"
    assert frame.loc["7", "age"] == 34
    assert pd.isna(frame.loc["8", "age"])
    assert pd.isna(frame.loc["7", "country"])  # "NA" is read as missing, as R and pandas write it
    assert frame.loc["8", "country"] == "DE"
    assert frame["score"].dtype == np.float64


def test_delimiter_override_and_explicit_format(tmp_path):
    path = tmp_path / "events.txt"
    path.write_text("user_id;item_id;plays\nu1;a;2\nu2;b;3\n", encoding="utf-8")
    dataset = TabularLoader(
        TabularParams(interactions=str(path), format="csv", delimiter=";")
    ).load()
    assert dataset.interactions.frame["plays"].tolist() == [2.0, 3.0]
    assert dataset.name == "events"


def test_params_reject_unknown_mapping_keys_and_fields():
    with pytest.raises(ValidationError, match="unknown key"):
        TabularParams(interactions="x.csv", columns={"userid": "u"})
    with pytest.raises(ValidationError, match="unknown key"):
        TabularParams(interactions="x.csv", catalog_columns={"name": "n"})
    with pytest.raises(ValidationError):
        TabularParams(interactions="x.csv", sheet="1")  # type: ignore[call-arg]


def test_detect_format():
    assert detect_format("a/b.CSV") == "csv"
    assert detect_format("b.tab") == "tsv"
    assert detect_format("b.jsonl.gz") == "jsonl"
    assert detect_format("b.pq") == "parquet"


def test_builtin_plugin_registers_the_three_loaders():
    registry = PluginRegistry()
    builtin_loaders.audit_sdk_register_dataset_loaders(
        registry.make_register("dataset_loader", plugin="datasets")
    )
    assert registry.names("dataset_loader") == ["hetrec_lastfm_2k", "synthetic", "tabular"]
    assert registry.get("dataset_loader", "tabular").cls is TabularLoader
    assert registry.get("dataset_loader", "synthetic").cls is SyntheticWorldLoader
    assert registry.get("dataset_loader", "hetrec_lastfm_2k").cls is HetRecLastfmLoader
