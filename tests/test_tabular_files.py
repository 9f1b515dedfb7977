"""Files as people have them: headerless, per-file formats, one-hot genres, and the data-layer
mistakes that used to give silently wrong results."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from audit_sdk.data.tabular_loader import TabularLoader, TabularParams, read_table
from audit_sdk.data.validation import validate_dataset
from audit_sdk.errors import DataValidationError


def _load(**params: object):  # type: ignore[no-untyped-def]
    return TabularLoader(TabularParams(**params)).load()  # type: ignore[arg-type]


def test_headerless_files_with_their_own_delimiters_and_encodings(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("1\t10\t5\n1\t11\t3\n2\t10\t4\n")
    (tmp_path / "u.user").write_text("1|24|M\n2|53|F\n")
    (tmp_path / "u.item").write_bytes("10|Caf\xe9|0|1\n11|Noir|1|0\n".encode("latin-1"))
    dataset = _load(
        interactions=str(tmp_path / "u.data"),
        users=str(tmp_path / "u.user"),
        catalog=str(tmp_path / "u.item"),
        files={
            "interactions": {
                "format": "tsv",
                "header": False,
                "names": ["user_id", "item_id", "rating"],
            },
            "users": {
                "format": "csv",
                "delimiter": "|",
                "header": False,
                "names": ["user_id", "age", "gender"],
            },
            "catalog": {
                "format": "csv",
                "delimiter": "|",
                "encoding": "latin-1",
                "header": False,
                "names": ["item_id", "title", "Film-Noir", "Comedy"],
            },
        },
        genre_columns={"between": ["Film-Noir", "Comedy"]},
    )
    frame = dataset.interactions.frame
    assert frame["rating"].tolist() == [5.0, 3.0, 4.0]
    assert dataset.users.frame.loc["2", "age"] == 53
    catalog = dataset.catalog.frame
    assert catalog.loc["10", "title"] == "Caf\u00e9"
    assert catalog.loc["10", "genres"] == ("comedy",)
    assert catalog.loc["11", "genres"] == ("film-noir",)
    assert "Comedy" not in catalog.columns  # folded into genres, not extras


def test_headerless_without_names_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("1\t10\n")
    with pytest.raises(DataValidationError, match="header is false but no names"):
        _load(
            interactions=str(tmp_path / "u.data"),
            files={"interactions": {"format": "tsv", "header": False}},
        )
    with pytest.raises(ValidationError, match="names lists 'a' twice"):
        TabularParams(interactions="x", files={"interactions": {"names": ["a", "a"]}})


def test_one_hot_cells_must_be_zero_or_one(tmp_path: Path) -> None:
    (tmp_path / "i.csv").write_text("user_id,item_id\nu,a\n")
    (tmp_path / "c.csv").write_text("item_id,rock,jazz\na,1,maybe\n")
    with pytest.raises(DataValidationError, match="must hold 0 or 1, got 'maybe'") as info:
        _load(
            interactions=str(tmp_path / "i.csv"),
            catalog=str(tmp_path / "c.csv"),
            genre_columns={"columns": ["rock", "jazz"]},
        )
    assert "column 'jazz'" in str(info.value) and "row 1" in str(info.value)


def test_an_empty_unnamed_column_is_dropped_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "i.csv").write_text("user_id,item_id\nu1,a\nu2,a\n")
    (tmp_path / "users.csv").write_text("user_id,age,\nu1,20,\nu2,30,\n")  # trailing comma
    dataset = _load(interactions=str(tmp_path / "i.csv"), users=str(tmp_path / "users.csv"))
    assert list(dataset.users.frame.columns) == ["age"]
    assert any(
        "column 3 has no name and no values; dropped" in n for n in dataset.metadata["notes"]
    )


def test_an_unnamed_column_with_values_never_becomes_an_attribute(tmp_path: Path) -> None:
    (tmp_path / "i.csv").write_text("user_id,item_id\nu1,a\n")
    (tmp_path / "users.csv").write_text("user_id,age,,gender\nu1,20,x,F\n")
    with pytest.raises(DataValidationError, match="column 3 has no name in the header but holds 1"):
        _load(interactions=str(tmp_path / "i.csv"), users=str(tmp_path / "users.csv"))


def test_a_header_naming_a_column_twice_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "i.csv").write_text("user_id,item_id,plays,plays\nu1,a,1,2\n")
    with pytest.raises(
        DataValidationError, match="names column 'plays' twice \\(columns 3 and 4\\)"
    ):
        read_table(tmp_path / "i.csv")


def test_plays_too_large_to_count_is_an_error_naming_row_and_column(tmp_path: Path) -> None:
    (tmp_path / "i.csv").write_text("user_id,item_id,plays\nu1,a,3\nu2,a,99999999999999999999\n")
    with pytest.raises(DataValidationError, match="too large to count exactly") as info:
        validate_dataset(read_table(tmp_path / "i.csv"), name="x")
    assert "row 2" in str(info.value) and "column 'plays'" in str(info.value)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("i.jsonl", '{"user_id": {"id": 1}, "item_id": "a"}\n'),
        ("i.csv", 'user_id,item_id\n"{""id"": 1}",a\n'),
    ],
)
def test_ids_that_are_json_objects_are_rejected(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(
        DataValidationError, match="user_id must be text or an integer, got the JSON object"
    ):
        validate_dataset(read_table(tmp_path / name), name="x")


@pytest.mark.parametrize("age", ["-3", "130"])
def test_impossible_ages_are_rejected(tmp_path: Path, age: str) -> None:
    (tmp_path / "i.csv").write_text("user_id,item_id\nu1,a\nu2,a\n")
    (tmp_path / "users.csv").write_text(f"user_id,age\nu1,30\nu2,{age}\n")
    with pytest.raises(DataValidationError, match=f"age {age} is impossible") as info:
        _load(interactions=str(tmp_path / "i.csv"), users=str(tmp_path / "users.csv"))
    assert "row 2" in str(info.value) and "column 'age'" in str(info.value)


def test_text_ages_and_missing_ages_are_fine(tmp_path: Path) -> None:
    (tmp_path / "i.csv").write_text("user_id,item_id\nu1,a\nu2,a\n")
    (tmp_path / "users.csv").write_text("user_id,age\nu1,18-24\nu2,\n")
    dataset = _load(interactions=str(tmp_path / "i.csv"), users=str(tmp_path / "users.csv"))
    assert dataset.users.frame.loc["u1", "age"] == "18-24"
