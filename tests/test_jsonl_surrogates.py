"""A lone surrogate escape in JSON lines is an error naming file, row and column (it used to
load and fail later, far from the data); a complete pair is a character and loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit_sdk.data.tabular_loader import read_table
from audit_sdk.errors import DataValidationError


def test_a_lone_surrogate_is_named(tmp_path: Path) -> None:
    path = tmp_path / "plays.jsonl"
    path.write_text(
        '{"user_id": "u1", "item_id": "t1", "plays": 1}\n'
        '{"user_id": "u2", "item_id": "t\\ud800", "plays": 2}\n',
        encoding="utf-8",
    )
    with pytest.raises(DataValidationError) as err:
        read_table(path, format="jsonl")
    assert (err.value.row, err.value.column) == (2, "item_id")
    assert str(path) in str(err.value)


def test_a_surrogate_pair_is_a_character(tmp_path: Path) -> None:
    path = tmp_path / "plays.jsonl"
    path.write_text('{"user_id": "u1", "item_id": "\\ud83d\\ude00", "plays": 1}\n')
    assert read_table(path, format="jsonl").frame["item_id"].tolist() == ["\U0001f600"]
