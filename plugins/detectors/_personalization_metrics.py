"""Ranking metrics of the personalization detector.

Per group, Kendall's tau-b (Kendall 1945, "The treatment of ties in ranking problems", Eq. 5;
``scipy.stats.kendalltau(variant="b")``) between the predicted and the true *rank vectors* of
the group's users, one entry per user in a fixed user order:

    tau_b = (C - D) / sqrt((C + D + T_x) (C + D + T_y))

with C, D the concordant and discordant user pairs and T_x, T_y the pairs tied only in the
prediction or only in the truth. Tau is invariant to monotone transformations of either vector,
so the scores themselves can stand for their rank vectors. A prediction that ties every user
carries no ranking information: tau-b is undefined there and the group scores 0 (counted as
``constant_predictions``).

The ordering pitfall. PerRecBench's released evaluator passes each side's *best-first ordering
of user ids* to ``kendalltau`` instead of the rank vectors. Position p of an ordering holds a
user, not that user's rank, so the two sequences compare "which user sits at position p", a
different statistic: for two users both readings agree, but from three users on they do not
(true order b, c, a; predicted b, a, c: rank-vector tau +1/3, ordering tau -1), and ties
cannot be expressed at all. :func:`ordering_tau` reproduces it so a test can show the two
differ; the detector never uses it.

Averages: over groups, per difficulty and overall, with bootstrap BCa CIs over groups
(:func:`audit_sdk.stats.bootstrap.mean_cis`). MAE and RMSE of pointwise rating predictions
(PerRecBench Sec. 4.2, Table 3) are reported beside tau: the paper shows they say little
about personalization.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from audit_sdk.stats.bootstrap import Interval, mean_ci, mean_cis

__all__ = [
    "GroupScores",
    "error_intervals",
    "group_taus",
    "ordering_tau",
    "rank_tau",
    "summarize_taus",
    "user_concordance",
]


def rank_tau(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Tau-b between the rank vectors of ``predicted`` and ``truth`` (higher = preferred), one
    entry per user in the same order; 0 where the prediction ties every user."""
    predicted = np.asarray(predicted, dtype=float)
    truth = np.asarray(truth, dtype=float)
    if len(predicted) < 2 or np.ptp(predicted) == 0 or np.ptp(truth) == 0:
        return 0.0
    return float(stats.kendalltau(predicted, truth, variant="b").statistic)


def ordering_tau(predicted: np.ndarray, truth: np.ndarray) -> float:
    """PerRecBench's released computation, kept to document its bug: tau between the
    best-first *orderings* of user positions (``argsort`` of each side), not their rank
    vectors. Differs from :func:`rank_tau` for groups of three or more."""
    order_pred = np.argsort(-np.asarray(predicted, dtype=float), kind="stable")
    order_true = np.argsort(-np.asarray(truth, dtype=float), kind="stable")
    return float(stats.kendalltau(order_pred, order_true).statistic)


@dataclass(frozen=True)
class GroupScores:
    """Per-group tau of one method: ``frame`` has ``group_id, difficulty, size, tau`` and
    ``constant`` (the prediction tied every user)."""

    frame: pd.DataFrame

    @property
    def n_constant(self) -> int:
        return int(self.frame["constant"].sum())


def group_taus(predictions: pd.DataFrame) -> GroupScores:
    """``predictions``: one row per (group, user) with ``group_id, difficulty, size,
    predicted, relative`` (NaN ``predicted``: no usable answer; such groups are left out)."""
    rows = []
    for group_id, part in predictions.groupby("group_id", sort=False):
        predicted = part["predicted"].to_numpy(dtype=float)
        if not np.isfinite(predicted).all():
            continue
        rows.append(
            (
                group_id,
                part["difficulty"].iat[0],
                int(part["size"].iat[0]),
                rank_tau(predicted, part["relative"].to_numpy(dtype=float)),
                bool(np.ptp(predicted) == 0),
            )
        )
    return GroupScores(
        pd.DataFrame(rows, columns=["group_id", "difficulty", "size", "tau", "constant"])
    )


def summarize_taus(
    scores: GroupScores, *, confidence: float, n_resamples: int, rng: np.random.Generator
) -> tuple[Interval, dict[str, Interval]]:
    """Mean tau over all groups and per difficulty, each with a bootstrap CI over groups."""
    frame = scores.frame
    overall = mean_ci(
        frame["tau"].to_numpy(dtype=float), confidence=confidence, n_resamples=n_resamples, rng=rng
    )
    order = frame.drop_duplicates("difficulty").sort_values("size")["difficulty"]
    columns = {str(d): np.where(frame["difficulty"] == d, frame["tau"], np.nan) for d in order}
    by_difficulty = (
        mean_cis(columns, confidence=confidence, n_resamples=n_resamples, rng=rng)
        if columns
        else {}
    )
    return overall, by_difficulty


def error_intervals(
    predictions: pd.DataFrame, *, confidence: float, n_resamples: int, rng: np.random.Generator
) -> tuple[Interval, Interval] | None:
    """MAE and RMSE of ``rating_predicted`` against ``rating`` with bootstrap CIs over groups
    (each group's mean absolute and mean squared error is one unit; RMSE's interval is the
    square root of the mean squared error's)."""
    if "rating_predicted" not in predictions or "rating" not in predictions:
        return None
    ok = predictions[np.isfinite(predictions["rating_predicted"].to_numpy(dtype=float))]
    if ok.empty:
        return None
    err = ok["rating_predicted"].to_numpy(dtype=float) - ok["rating"].to_numpy(dtype=float)
    per_group = (
        pd.DataFrame({"group_id": ok["group_id"].to_numpy(), "abs": np.abs(err), "sq": err**2})
        .groupby("group_id", sort=False)
        .mean()
    )
    cis = mean_cis(
        {"abs": per_group["abs"].to_numpy(), "sq": per_group["sq"].to_numpy()},
        confidence=confidence,
        n_resamples=n_resamples,
        rng=rng,
    )
    sq = cis["sq"]
    rmse = Interval(
        float(np.sqrt(sq.estimate)),
        float(np.sqrt(max(sq.low, 0.0))),
        float(np.sqrt(max(sq.high, 0.0))),
        sq.n,
        sq.method,
    )
    return cis["abs"], rmse


def user_concordance(predictions: pd.DataFrame) -> pd.Series:
    """Per user, the mean over the pairs they belong to (across groups) of +1 (the pair is
    ordered as in the truth), -1 (reversed) or 0 (a predicted tie): whom the method ranks
    correctly. Averaged over all pairs it is Kendall's tau-a."""
    ok = predictions[np.isfinite(predictions["predicted"].to_numpy(dtype=float))]
    users, signs = [], []
    for _, part in ok.groupby("group_id", sort=False):
        p = part["predicted"].to_numpy(dtype=float)
        t = part["relative"].to_numpy(dtype=float)
        ids = part["user_id"].to_numpy()
        i, j = np.triu_indices(len(p), k=1)
        sign = np.sign(p[i] - p[j]) * np.sign(t[i] - t[j])
        users.extend(ids[i])
        users.extend(ids[j])
        signs.extend(sign)
        signs.extend(sign)
    if not users:
        return pd.Series(dtype=float, name="concordance")
    frame = pd.DataFrame({"user_id": users, "sign": signs})
    out = frame.groupby("user_id")["sign"].mean()
    out.name = "concordance"
    return out
