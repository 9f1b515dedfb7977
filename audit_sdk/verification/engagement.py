"""Engagement with logged playlist answers: QualityScore per answer, prompt and group, and a
validation model that predicts it from embeddings.

"Verifying LLM-Driven Music Recommendation Systems" (Amazon Music, KDD 2025 LLM4ECommerce
workshop, Sec. 5) scores a production answer R to a prompt P by

    QualityScore(P, R) = alpha Plays / |R| + beta Saves / |R| + gamma SavedPlays / max(1, Saves)

(plays of the answer's tracks, saves of them, and later plays of the saved ones), and asks how
far embeddings of the prompt and the tracks predict it. The log is one row per answer:

``prompt``
    the request (text); rows with the same prompt are one resampling unit.
``tracks``
    the answer: one track per line or separated by ``" | "`` (numbering stripped); |R| is
    the number of tracks. Alternatively ``n_tracks`` gives |R| (no validation model then).
``plays``, ``saves``, ``saved_plays``
    non-negative counts.
any other column
    group labels (``params.group_by``) or acoustic features (``acoustic_*`` numbers).

The validation model is a ridge regression (``sklearn.linear_model.RidgeCV``) on
the prompt-answer agreement [v_p * u_R, cos(v_p, v_R)] plus the standardised acoustic columns
(v_p the prompt's unit vector, v_R the mean of the tracks' unit vectors, u_R = v_R / |v_R|; the
cosine is the theme term of eq. 4, the products let each dimension weigh in; the raw vectors
are left out, as on ~100s of answers they only overfit prompt identity), cross-validated with folds grouped by prompt
(``GroupKFold``: a prompt never informs its own prediction); out-of-fold predictions give
R-squared (``sklearn.metrics.r2_score``) and Spearman's rho (``scipy.stats.spearmanr``), each
with a percentile bootstrap CI resampling prompts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from audit_sdk.data.tabular_loader import read_table
from audit_sdk.generative_recommendation import parse_recommendation_lines
from audit_sdk.stats.bootstrap import Interval, statistic_ci
from audit_sdk.vectors import unit_rows
from audit_sdk.verification.catalog_attributes import VerificationInputError

__all__ = [
    "COUNT_COLUMNS",
    "QualityWeights",
    "ValidationResult",
    "answer_tracks",
    "quality_scores",
    "read_engagement_log",
    "validate_engagement_log",
    "validation_model",
]

COUNT_COLUMNS = ("plays", "saves", "saved_plays")


@dataclass(frozen=True)
class QualityWeights:
    alpha: float = 1.0
    beta: float = 1.0
    gamma: float = 1.0


def answer_tracks(answer: object) -> list[str]:
    """The track lines of a logged answer (``" | "`` or newlines between tracks)."""
    if not isinstance(answer, str):
        return []
    return parse_recommendation_lines(answer.replace(" | ", "\n"))


def validate_engagement_log(
    frame: pd.DataFrame, *, source: str, row_of: Callable[[int], int] | None = None
) -> pd.DataFrame:
    """The log with numeric counts and ``n_tracks`` (|R|), or a
    :class:`VerificationInputError` naming the file, row (``row_of(position)``, default the
    1-based position) and column."""
    number = row_of or (lambda position: position + 1)
    missing = [c for c in ("prompt", *COUNT_COLUMNS) if c not in frame.columns]
    if "tracks" not in frame.columns and "n_tracks" not in frame.columns:
        missing.append("tracks (or n_tracks)")
    if missing:
        raise VerificationInputError(
            f"{source}: missing column(s) {', '.join(missing)}; the engagement log needs "
            f"prompt, tracks, plays, saves, saved_plays (it has {', '.join(map(str, frame.columns))})"
        )
    out = frame.copy()
    for column in (*COUNT_COLUMNS, *(["n_tracks"] if "tracks" not in frame else [])):
        values = pd.to_numeric(out[column], errors="coerce")
        bad = values.isna() | (values < 0)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise VerificationInputError(
                f"{source}: row {number(row)}, column {column!r}: {frame[column].iloc[row]!r} is "
                "not a non-negative count"
            )
        out[column] = values.astype(float)
    if "tracks" in frame.columns:
        out["n_tracks"] = [float(len(answer_tracks(a))) for a in out["tracks"]]
    empty = out["n_tracks"] <= 0
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0])
        raise VerificationInputError(
            f"{source}: row {number(row)}: the answer lists no track (|R| = 0), so QualityScore is "
            "undefined; drop the row or fix its tracks"
        )
    out["prompt"] = out["prompt"].astype(str)
    return out.reset_index(drop=True)


def read_engagement_log(
    path: str | Path, *, columns: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Read and validate a log file (CSV, TSV, JSON lines, Parquet); ``columns`` maps the
    standard names to the file's (``{"prompt": "query"}``)."""
    raw = read_table(path)
    frame = raw.frame.rename(columns={v: k for k, v in (columns or {}).items()})
    return validate_engagement_log(frame, source=str(path), row_of=raw.row_of)


def quality_scores(log: pd.DataFrame, weights: QualityWeights = QualityWeights()) -> pd.Series:
    """QualityScore(P, R) per answer (KDD 2025 LLM4ECommerce, Sec. 5):
    alpha Plays/|R| + beta Saves/|R| + gamma SavedPlays/max(1, Saves)."""
    size = log["n_tracks"].to_numpy(dtype=float)
    plays, saves, saved_plays = (log[c].to_numpy(dtype=float) for c in COUNT_COLUMNS)
    score = (
        weights.alpha * plays / size
        + weights.beta * saves / size
        + weights.gamma * saved_plays / np.maximum(1.0, saves)
    )
    return pd.Series(score, index=log.index, name="quality_score")


@dataclass(frozen=True)
class ValidationResult:
    r2: Interval
    spearman: Interval
    n_answers: int
    n_prompts: int
    folds: int
    features: int
    predictions: np.ndarray


def validation_model(
    log: pd.DataFrame,
    target: pd.Series,
    embed: Callable[[Sequence[str]], np.ndarray],
    *,
    rng: np.random.Generator,
    acoustic_prefix: str = "acoustic_",
    folds: int = 5,
    n_resamples: int = 1000,
    confidence: float = 0.95,
) -> ValidationResult:
    """Cross-validated R-squared and Spearman of a ridge model predicting ``target`` (the
    QualityScore) from prompt and track embeddings plus acoustic columns."""
    if "tracks" not in log:
        raise VerificationInputError(
            "the validation model embeds the answers' tracks: the log needs a 'tracks' column"
        )
    prompts = log["prompt"].astype(str).tolist()
    unique_prompts = list(dict.fromkeys(prompts))
    n_folds = min(folds, len(unique_prompts))
    if n_folds < 2:
        raise VerificationInputError(
            f"the validation model needs answers to at least 2 distinct prompts (got {len(unique_prompts)})"
        )
    tracks = [answer_tracks(a) for a in log["tracks"]]
    unique_tracks = list(dict.fromkeys(t for answer in tracks for t in answer))
    prompt_vectors = unit_rows(embed(unique_prompts))
    track_vectors = unit_rows(embed(unique_tracks))
    prompt_row = {p: i for i, p in enumerate(unique_prompts)}
    track_row = {t: i for i, t in enumerate(unique_tracks)}
    answer_vectors = np.vstack(
        [track_vectors[[track_row[t] for t in answer]].mean(axis=0) for answer in tracks]
    )
    prompt_part = prompt_vectors[[prompt_row[p] for p in prompts]]
    agreement = prompt_part * unit_rows(answer_vectors)
    parts = [agreement, agreement.sum(axis=1, keepdims=True)]
    acoustic = [c for c in log.columns if str(c).startswith(acoustic_prefix)]
    if acoustic:
        values = log[acoustic].apply(pd.to_numeric, errors="coerce")
        if values.isna().any().any():
            column = values.columns[values.isna().any()][0]
            raise VerificationInputError(
                f"acoustic column {column!r} has missing or non-numeric values; fill or drop it"
            )
        parts.append(values.to_numpy(dtype=float))
    x = np.hstack(parts)
    y = target.to_numpy(dtype=float)
    groups = np.array([prompt_row[p] for p in prompts])
    n_embedded = x.shape[1] - len(acoustic)
    scale = ColumnTransformer(
        [("acoustic", StandardScaler(), list(range(n_embedded, x.shape[1])))],
        remainder="passthrough",
    )
    model = make_pipeline(scale, RidgeCV(alphas=np.logspace(-3, 3, 13)))
    predicted = cross_val_predict(model, x, y, groups=groups, cv=GroupKFold(n_splits=n_folds))
    r2 = float(r2_score(y, predicted))
    rho = float(stats.spearmanr(y, predicted).statistic)
    # percentile bootstrap over prompts (clusters of answers)
    members = [np.flatnonzero(groups == g) for g in range(len(unique_prompts))]
    r2_reps, rho_reps = np.empty(n_resamples), np.empty(n_resamples)
    for b in range(n_resamples):
        chosen = rng.integers(len(members), size=len(members))
        rows = np.concatenate([members[g] for g in chosen])
        r2_reps[b] = r2_score(y[rows], predicted[rows]) if np.ptp(y[rows]) > 0 else np.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            rho_reps[b] = (
                stats.spearmanr(y[rows], predicted[rows]).statistic
                if np.ptp(y[rows]) > 0 and np.ptp(predicted[rows]) > 0
                else np.nan
            )
    method = "bootstrap-percentile over prompts (out-of-fold predictions)"
    return ValidationResult(
        r2=statistic_ci(
            r2_reps, r2, confidence=confidence, n=len(y), method=method, bounds=(-np.inf, 1.0)
        ),
        spearman=statistic_ci(
            rho_reps, rho, confidence=confidence, n=len(y), method=method, bounds=(-1.0, 1.0)
        ),
        n_answers=len(y),
        n_prompts=len(unique_prompts),
        folds=n_folds,
        features=x.shape[1],
        predictions=predicted,
    )
