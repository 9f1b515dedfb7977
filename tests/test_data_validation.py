"""Bad input gets a DataValidationError naming the file, the row (or line) and the column."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit_sdk.data.tabular_loader import TabularLoader, TabularParams
from audit_sdk.data.validation import RawTable, decode_text, validate_dataset
from audit_sdk.errors import DataValidationError

GOOD_ROWS = [
    ("u1", "t1", "3", "2025-01-01T10:00:00Z", "200"),
    ("u1", "t2", "1", "2025-01-02T10:00:00Z", "12.5"),
    ("u2", "t1", "2", "2025-01-03T10:00:00Z", "180"),
    ("u2", "t3", "5", "2025-01-04T10:00:00Z", "240"),
    ("u3", "t2", "1", "2025-01-05T10:00:00Z", "31"),
    ("u3", "t3", "4", "2025-01-06T10:00:00Z", "199"),
    ("u3", "t1", "2", "2025-01-07T10:00:00Z", "221"),
    ("u4", "t2", "7", "2025-01-08T10:00:00Z", "230"),
]
HEADER = ("user_id", "item_id", "plays", "timestamp", "duration_s")


def write_csv(path: Path, rows: list[tuple[str, ...]], header=HEADER, sep: str = ",") -> Path:
    lines = [sep.join(header)] + [sep.join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load(path: Path, **params) -> object:
    return TabularLoader(TabularParams(interactions=str(path), **params)).load()


def with_row(index: int, **changes: str) -> list[tuple[str, ...]]:
    """GOOD_ROWS with data row ``index`` (1-based) changed."""
    rows = [list(r) for r in GOOD_ROWS]
    for key, value in changes.items():
        rows[index - 1][HEADER.index(key)] = value
    return [tuple(r) for r in rows]


def test_good_file_loads_with_canonical_dtypes(tmp_path):
    dataset = load(write_csv(tmp_path / "streams.csv", GOOD_ROWS))
    frame = dataset.interactions.frame
    assert len(frame) == len(GOOD_ROWS)
    assert pd.api.types.is_string_dtype(frame["user_id"])
    assert pd.api.types.is_string_dtype(frame["item_id"])
    assert frame["plays"].dtype == np.float64
    assert frame["duration_s"].dtype == np.float64
    assert isinstance(frame["timestamp"].dtype, pd.DatetimeTZDtype)
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert frame["plays"].tolist() == [3, 1, 2, 5, 1, 4, 2, 7]


def test_missing_required_column_lists_the_file_columns(tmp_path):
    path = write_csv(
        tmp_path / "streams.csv",
        [(r[0], r[1], r[2]) for r in GOOD_ROWS],
        header=("listener", "song", "plays"),
    )
    with pytest.raises(DataValidationError) as err:
        load(path, columns={"user_id": "listener"})
    text = str(err.value)
    assert err.value.source == str(path)
    assert err.value.column == "item_id"
    assert "'item_id'" in text
    assert "'listener', 'song', 'plays'" in text
    assert "columns" in err.value.hint
    assert "item_id" in err.value.hint


def test_mapping_to_an_absent_column_names_the_mapping_key(tmp_path):
    path = write_csv(tmp_path / "streams.csv", GOOD_ROWS)
    with pytest.raises(DataValidationError) as err:
        load(path, columns={"rating": "stars"})
    assert err.value.column == "stars"
    assert "columns.rating" in str(err.value)
    assert "'duration_s'" in str(err.value)


def test_wrong_type_names_row_column_and_value(tmp_path):
    path = write_csv(tmp_path / "streams.csv", with_row(7, plays="abc"))
    with pytest.raises(DataValidationError) as err:
        load(path)
    assert (err.value.row, err.value.column) == (7, "plays")
    assert "'abc'" in str(err.value)
    assert f"{path}, row 7, column 'plays'" in str(err.value)


@pytest.mark.parametrize("value", ["", "NaN", "  "])
def test_empty_required_field(tmp_path, value):
    path = write_csv(tmp_path / "streams.csv", with_row(3, user_id=value))
    with pytest.raises(DataValidationError, match="user_id is empty") as err:
        load(path)
    assert (err.value.row, err.value.column) == (3, "user_id")


def test_nan_plays_is_an_empty_required_field(tmp_path):
    path = write_csv(tmp_path / "streams.csv", with_row(5, plays="NaN"))
    with pytest.raises(DataValidationError, match="plays is empty") as err:
        load(path)
    assert (err.value.row, err.value.column) == (5, "plays")


def test_negative_plays(tmp_path):
    path = write_csv(tmp_path / "streams.csv", with_row(2, plays="-3"))
    with pytest.raises(DataValidationError, match=">= 0") as err:
        load(path)
    assert (err.value.row, err.value.column) == (2, "plays")
    assert "'-3'" in str(err.value)


def test_negative_duration(tmp_path):
    path = write_csv(tmp_path / "streams.csv", with_row(6, duration_s="-1.5"))
    with pytest.raises(DataValidationError, match="duration_s must be >= 0") as err:
        load(path)
    assert (err.value.row, err.value.column) == (6, "duration_s")


def test_infinite_plays(tmp_path):
    path = write_csv(tmp_path / "streams.csv", with_row(4, plays="inf"))
    with pytest.raises(DataValidationError, match="finite") as err:
        load(path)
    assert err.value.row == 4


def test_duplicate_rows_name_both_rows(tmp_path):
    rows = [*GOOD_ROWS, GOOD_ROWS[2]]
    path = write_csv(tmp_path / "streams.csv", rows)
    with pytest.raises(DataValidationError, match="duplicate") as err:
        load(path)
    assert "rows 3 and 9" in str(err.value)
    assert err.value.row == 9


def test_same_user_item_at_different_times_is_not_a_duplicate(tmp_path):
    rows = [*GOOD_ROWS, ("u1", "t1", "1", "2025-02-01T00:00:00Z", "100")]
    dataset = load(write_csv(tmp_path / "streams.csv", rows))
    assert len(dataset.interactions) == len(GOOD_ROWS) + 1


def test_unparseable_timestamp(tmp_path):
    path = write_csv(tmp_path / "streams.csv", with_row(4, timestamp="yesterday-ish"))
    with pytest.raises(DataValidationError, match="cannot parse timestamp 'yesterday-ish'") as err:
        load(path)
    assert (err.value.row, err.value.column) == (4, "timestamp")
    assert "timestamp_unit" in err.value.hint


def test_epoch_timestamp_with_iso_unit_is_rejected(tmp_path):
    rows = [(r[0], r[1], r[2], str(1735725600 + i), r[4]) for i, r in enumerate(GOOD_ROWS)]
    path = write_csv(tmp_path / "streams.csv", rows)
    with pytest.raises(DataValidationError, match="ISO 8601") as err:
        load(path, timestamp_unit="iso")
    assert err.value.row == 1


def test_items_missing_from_catalog_first_row_and_count(tmp_path):
    interactions = write_csv(tmp_path / "streams.csv", GOOD_ROWS)
    catalog = tmp_path / "tracks.csv"
    catalog.write_text("item_id,title,artist\nt1,One,A\nt3,Three,C\n", encoding="utf-8")
    with pytest.raises(DataValidationError) as err:
        load(interactions, catalog=str(catalog))
    text = str(err.value)
    assert err.value.row == 2
    assert err.value.column == "item_id"
    assert "'t2'" in text
    assert "3 interaction rows" in text
    assert str(catalog) in text
    assert err.value.source == str(interactions)


def test_users_missing_from_users_table(tmp_path):
    interactions = write_csv(tmp_path / "streams.csv", GOOD_ROWS)
    users = tmp_path / "people.csv"
    users.write_text("user_id,age\nu1,30\nu2,41\nu4,22\n", encoding="utf-8")
    with pytest.raises(DataValidationError) as err:
        load(interactions, users=str(users))
    assert err.value.row == 5
    assert err.value.column == "user_id"
    assert "'u3'" in str(err.value)
    assert "3 interaction rows" in str(err.value)


def test_latin1_file_read_as_utf8(tmp_path):
    path = tmp_path / "tracks.csv"
    text = "item_id,title,artist\nt1,One,Abba\nt2,Two,Beyoncé\nt3,Three,Motörhead\n"
    path.write_bytes(text.encode("latin-1"))
    interactions = write_csv(tmp_path / "streams.csv", GOOD_ROWS)
    with pytest.raises(DataValidationError) as err:
        load(interactions, catalog=str(path))
    message = str(err.value)
    assert err.value.source == str(path)
    assert "line 3" in message
    assert "0xe9" in message
    assert "'utf-8'" in message
    assert err.value.row == 2  # data row: the header is line 1
    assert "encoding: latin-1" in err.value.hint
    dataset = load(interactions, catalog=str(path), encoding="latin-1")
    assert dataset.catalog.frame.loc["t2", "artist"] == "Beyoncé"
    assert dataset.catalog.frame.loc["t3", "artist"] == "Motörhead"


def test_decode_text_counts_lines_from_the_byte_offset():
    data = b"a\nb\nc\n" + b"\xff\n"
    with pytest.raises(DataValidationError, match="line 4 \\(byte offset 6\\)") as err:
        decode_text(data, source="x.jsonl", header_lines=0)
    assert err.value.row == 4


def test_unknown_encoding_name(tmp_path):
    path = write_csv(tmp_path / "streams.csv", GOOD_ROWS)
    with pytest.raises(DataValidationError, match="unknown encoding 'klingon'"):
        load(path, encoding="klingon")


def test_script_tag_in_artist_name_loads_verbatim(tmp_path):
    catalog = tmp_path / "tracks.csv"
    catalog.write_text(
        'item_id,title,artist,genres\nt1,"<b>One</b>",<script>alert(1)</script>,pop|rock\n'
        "t2,Two,B,\nt3,Three,C,jazz\n",
        encoding="utf-8",
    )
    dataset = load(write_csv(tmp_path / "streams.csv", GOOD_ROWS), catalog=str(catalog))
    row = dataset.catalog.frame.loc["t1"]
    assert row["artist"] == "<script>alert(1)</script>"
    assert row["title"] == "<b>One</b>"
    assert row["genres"] == ("pop", "rock")
    assert dataset.catalog.frame.loc["t2", "genres"] == ()


def test_duplicate_catalog_item(tmp_path):
    catalog = tmp_path / "tracks.csv"
    catalog.write_text("item_id,title\nt1,One\nt2,Two\nt3,Three\nt2,Again\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="rows 2 and 4") as err:
        load(write_csv(tmp_path / "streams.csv", GOOD_ROWS), catalog=str(catalog))
    assert err.value.source == str(catalog)
    assert err.value.row == 4


def test_fractional_release_year(tmp_path):
    catalog = tmp_path / "tracks.csv"
    catalog.write_text("item_id,release_year\nt1,1999\nt2,2001.5\nt3,\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="whole year") as err:
        load(write_csv(tmp_path / "streams.csv", GOOD_ROWS), catalog=str(catalog))
    assert (err.value.row, err.value.column) == (2, "release_year")


def test_ragged_csv_row(tmp_path):
    path = tmp_path / "streams.csv"
    path.write_text("user_id,item_id\nu1,t1\nu2,t2,extra,more\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="as many fields as the header") as err:
        load(path)
    assert err.value.row == 2


def test_tsv_wrong_type(tmp_path):
    path = write_csv(tmp_path / "streams.tsv", with_row(8, duration_s="long"), sep="\t")
    with pytest.raises(DataValidationError, match="duration_s must be a number, got 'long'") as err:
        load(path)
    assert (err.value.row, err.value.column) == (8, "duration_s")


def test_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "streams.jsonl"
    path.write_text(
        '{"user_id": "u1", "item_id": "t1", "plays": 2}\n'
        "\n"
        '{"user_id": "u2", "item_id": "t2", "plays": 1}\n'
        '{"user_id": "u3", "item_id": "t3", "plays": "lots"}\n',
        encoding="utf-8",
    )
    with pytest.raises(DataValidationError, match="'lots'") as err:
        load(path)
    assert (err.value.row, err.value.column) == (4, "plays")


def test_jsonl_malformed_line(tmp_path):
    path = tmp_path / "streams.jsonl"
    path.write_text(
        '{"user_id": "u1", "item_id": "t1"}\n{"user_id": "u2", "item_id": \n', encoding="utf-8"
    )
    with pytest.raises(DataValidationError, match="not valid JSON") as err:
        load(path)
    assert err.value.row == 2


def test_parquet_negative_plays(tmp_path):
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame(
        {"user_id": ["u1", "u2", "u3"], "item_id": [10, 11, 12], "plays": [1.0, 4.0, -2.0]}
    )
    path = tmp_path / "streams.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataValidationError, match=r"plays must be >= 0, got -2\.0") as err:
        load(path)
    assert (err.value.row, err.value.column) == (3, "plays")


def test_gzipped_csv_row_numbers(tmp_path):
    text = "\n".join([",".join(HEADER), *(",".join(r) for r in with_row(2, plays="x"))])
    path = tmp_path / "streams.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    with pytest.raises(DataValidationError) as err:
        load(path)
    assert err.value.row == 2


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(DataValidationError, match="file not found") as err:
        load(tmp_path / "nope.csv")
    assert err.value.source == str(tmp_path / "nope.csv")
    odd = tmp_path / "streams.xyz"
    odd.write_text("user_id,item_id\nu1,t1\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"extension '\.xyz'") as err:
        load(odd)
    assert "format:" in err.value.hint
    assert len(load(odd, format="csv").interactions) == 1


def test_validate_dataset_builds_nothing_on_a_cross_table_error():
    interactions = RawTable(pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"]}), "events")
    catalog = RawTable(pd.DataFrame({"item_id": ["x"], "title": ["X"]}), "items")
    with pytest.raises(DataValidationError) as err:
        validate_dataset(interactions, name="t", catalog=catalog)
    assert err.value.source == "events"
    assert err.value.row == 2
    dataset = validate_dataset(interactions, name="t")
    assert dataset.metadata["notes"]
    assert list(dataset.catalog.frame.index) == ["x", "y"]
