"""Logged predictions for the personalization detector: score rankings already produced
elsewhere, without a model.

A CSV (or the file the detector's ``predictions_path`` writes) with one row per (group,
user, method):

* ``group_id``, ``user_id``, ``method``;
* the prediction: ``predicted`` (a score, higher = the user likes the item more relative to
  their mean) or ``rank`` (1 = ranked first);
* the truth: ``relative`` (rating minus the user's mean), or ``rating`` and ``user_mean``;
* optionally ``rating_predicted`` (pointwise ratings, for MAE/RMSE) and ``difficulty``
  (default: from the group's size, 2 easy, 3 medium, 4 hard).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from audit_sdk.atomic_io import atomic_write_text
from audit_sdk.errors import AuditSDKError

from ._personalization_groups import DIFFICULTY_BY_SIZE
from ._personalization_methods import MethodRun

__all__ = ["read_logged_predictions", "write_predictions"]

_WHERE = "detector 'personalization', params.logged_predictions"


def _fail(path: Path, message: str) -> AuditSDKError:
    return AuditSDKError(f"{_WHERE}: {path}: {message}")


def read_logged_predictions(path: str | Path) -> list[MethodRun]:
    """One :class:`MethodRun` per method in the table, in order of first appearance."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={"group_id": str, "user_id": str, "method": str})
    except FileNotFoundError as exc:
        raise _fail(path, "no such file; write one with params.predictions_path") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot be read as CSV ({exc})") from exc
    missing = [c for c in ("group_id", "user_id", "method") if c not in frame]
    if "predicted" not in frame and "rank" not in frame:
        missing.append("predicted (or rank)")
    if "relative" not in frame and not {"rating", "user_mean"} <= set(frame):
        missing.append("relative (or rating and user_mean)")
    if missing:
        raise _fail(
            path, f"missing column(s) {', '.join(missing)} (has: {', '.join(map(str, frame))})"
        )
    if "predicted" not in frame:
        frame["predicted"] = -pd.to_numeric(frame["rank"], errors="coerce")
    if "relative" not in frame:
        frame["relative"] = pd.to_numeric(frame["rating"], errors="coerce") - pd.to_numeric(
            frame["user_mean"], errors="coerce"
        )
    for column in ("predicted", "relative", "rating_predicted", "rating"):
        if column in frame:
            values = pd.to_numeric(frame[column], errors="coerce")
            bad = values.isna() & frame[column].notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0]) + 2  # header is line 1
                raise _fail(
                    path,
                    f"line {row}, column {column!r}: {frame[column].iat[row - 2]!r} is not a number",
                )
            frame[column] = values
    if frame["relative"].isna().any():
        row = int(np.flatnonzero(frame["relative"].isna().to_numpy())[0]) + 2
        raise _fail(path, f"line {row}: the true relative rating is missing")
    duplicated = frame.duplicated(["method", "group_id", "user_id"])
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0]) + 2
        raise _fail(path, f"line {row}: the same (method, group_id, user_id) appears twice")
    runs = []
    for method, part in frame.groupby("method", sort=False):
        part = part.reset_index(drop=True)
        size = part.groupby("group_id", sort=False)["user_id"].transform("size")
        part["size"] = size
        if "difficulty" not in part:
            part["difficulty"] = size.map(lambda s: DIFFICULTY_BY_SIZE.get(int(s), f"size_{s}"))
        part = part[part["size"] >= 2]
        runs.append(
            MethodRun(
                str(method),
                part,
                {"rows": len(part), "missing_scores": int(part["predicted"].isna().sum())},
            )
        )
    return runs


def write_predictions(path: str | Path, runs: list[MethodRun]) -> None:
    """Every run's per-user predictions as one CSV (the table :func:`read_logged_predictions`
    reads back), written atomically."""
    table = pd.concat([run.predictions.assign(method=run.name) for run in runs], ignore_index=True)
    columns = ["group_id", "difficulty", "user_id", "item_id", "method", "predicted"]
    if "rating_predicted" in table:
        columns.append("rating_predicted")
    columns += ["rating", "user_mean", "relative"]
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, table[columns].to_csv(index=False, float_format="%.6g"))
