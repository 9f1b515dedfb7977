"""Validation and preparation for :func:`audit_sdk.stats.aipw.estimate_ates`: the checked
outcome and treatment arrays, the covariate matrices, the cross-fitting fold plan, the outcome
model and the reasons a treatment is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold, StratifiedKFold


@dataclass
class _Inputs:
    """Validated arrays shared by every treatment."""

    y: np.ndarray
    t: np.ndarray  # n x m, int8 in {0, 1}
    names: list[str]
    groups: np.ndarray | None  # cluster codes 0..C-1 or None


def _validate(Y: Any, T: Any, names: Sequence[str] | None, groups: Any) -> _Inputs:
    y = np.asarray(Y, dtype=float).reshape(-1)
    if not np.isfinite(y).all():
        bad = int(np.flatnonzero(~np.isfinite(y))[0])
        raise ValueError(f"the outcome has a missing or infinite value at unit {bad}; drop it.")
    t = np.asarray(T)
    if t.ndim == 1:
        t = t.reshape(-1, 1)
    if t.ndim != 2 or t.shape[0] != len(y):
        raise ValueError(
            f"treatments must be an n x m array with n = {len(y)} rows, got shape {t.shape}."
        )
    if not np.isin(t, (0, 1)).all():
        raise ValueError("treatments must be 0/1 indicators (binarize shares first).")
    t = t.astype(np.int8)
    if names is None:
        names = [f"t{j}" for j in range(t.shape[1])]
    names = [str(v) for v in names]
    if len(names) != t.shape[1]:
        raise ValueError(f"{len(names)} treatment names for {t.shape[1]} treatment columns.")
    codes = None
    if groups is not None:
        groups = np.asarray(groups).reshape(-1)
        if len(groups) != len(y):
            raise ValueError(f"groups has {len(groups)} entries for {len(y)} units.")
        _, codes = np.unique(groups, return_inverse=True)
    return _Inputs(y=y, t=t, names=names, groups=codes)


def _validate_clip(clip: tuple[float, float]) -> tuple[float, float]:
    low, high = float(clip[0]), float(clip[1])
    if not 0.0 < low < high < 1.0:
        raise ValueError(f"clip must satisfy 0 < low < high < 1, got {clip}.")
    return low, high


def _skip_reason(
    n1: int, n0: int, *, min_units: int, constant_outcome: bool, y: np.ndarray
) -> str | None:
    if n1 == 0:
        return "no unit is treated (nobody has this treatment)"
    if n0 == 0:
        return "every unit is treated (no control group)"
    if n1 < min_units:
        return f"only {n1} treated units (need at least {min_units} per arm)"
    if n0 < min_units:
        return f"only {n0} control units (need at least {min_units} per arm)"
    if constant_outcome:
        return f"the outcome is constant ({y[0]:g} for every unit); no effect can be estimated"
    return None


class _Covariates:
    """Covariate matrices per treatment: one shared array or one per treatment."""

    def __init__(self, W: Any, *, n: int, m: int, standardize: bool) -> None:
        self.standardize = standardize
        self.n = n
        self._shared: np.ndarray | None = None
        self._per: Sequence[Any] | None = None
        if isinstance(W, np.ndarray) or hasattr(W, "to_numpy") or W is None:
            self._shared = self._prepare(np.zeros((n, 0)) if W is None else W)
        else:
            if len(W) != m:
                raise ValueError(f"{len(W)} covariate arrays for {m} treatments.")
            self._per = W

    def _prepare(self, W: Any) -> np.ndarray:
        x = np.asarray(W, dtype=float)
        if x.ndim == 1:
            x = x.reshape(-1, 1)
        if x.shape[0] != self.n:
            raise ValueError(f"covariates have {x.shape[0]} rows for {self.n} units.")
        if not np.isfinite(x).all():
            row, col = (int(v[0]) for v in np.nonzero(~np.isfinite(x)))
            raise ValueError(
                f"covariate column {col} has a missing or infinite value at unit {row}; "
                "impute it (and add a missing indicator) first."
            )
        if self.standardize and x.shape[1]:
            sd = x.std(axis=0)
            # a constant column carries no information and slows L-BFGS down; drop it
            x = (x[:, sd > 0] - x[:, sd > 0].mean(axis=0)) / sd[sd > 0]
        if x.shape[1] == 0:  # no covariates: intercept-only nuisance models
            x = np.zeros((self.n, 1))
        return np.ascontiguousarray(x)

    def matrix(self, j: int) -> np.ndarray:
        if self._shared is not None:
            return self._shared
        assert self._per is not None
        return self._prepare(self._per[j])


class _FoldPlan:
    """Which fold predicts each unit, per treatment (stratified) or shared (explicit/groups)."""

    def __init__(self, folds: Any, groups: np.ndarray | None, *, n: int, seed: int) -> None:
        self.seed = seed
        self.n = n
        self._fixed: np.ndarray | None = None
        if isinstance(folds, (int, np.integer)):
            if folds < 2:
                raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}.")
            self.n_folds = int(folds)
            if groups is not None:
                n_groups = int(groups.max()) + 1
                if n_groups < self.n_folds:
                    raise ValueError(f"{n_groups} clusters cannot fill {self.n_folds} folds.")
                splitter = GroupKFold(n_splits=self.n_folds, shuffle=True, random_state=seed)
                self._fixed = self._from_pairs(splitter.split(np.zeros(n), groups=groups))
        else:
            pairs = [(np.asarray(tr), np.asarray(te)) for tr, te in folds]
            self.n_folds = len(pairs)
            self._fixed = self._from_pairs(pairs, check_complement=True)

    def _from_pairs(self, pairs: Any, *, check_complement: bool = False) -> np.ndarray:
        fold_id = np.full(self.n, -1, dtype=np.int64)
        for k, (train, test) in enumerate(pairs):
            if (fold_id[test] != -1).any():
                raise ValueError(f"fold {k}'s test units also appear in an earlier fold.")
            fold_id[test] = k
            if check_complement:
                expected = np.setdiff1d(np.arange(self.n), test)
                if not np.array_equal(np.sort(train), expected):
                    raise ValueError(
                        f"fold {k}: the training units must be exactly the units outside its "
                        "test units."
                    )
        if (fold_id == -1).any():
            raise ValueError("the folds' test parts must cover every unit.")
        return fold_id

    def check(self, t: np.ndarray) -> str | None:
        """A reason the folds cannot fit this treatment, or None."""
        if self._fixed is None:
            return None
        for k in range(self.n_folds):
            train = self._fixed != k
            n1 = int(t[train].sum())
            if n1 == 0 or n1 == int(train.sum()):
                arm = "treated" if n1 == 0 else "control"
                return f"cross-fitting fold {k}'s training part has no {arm} units"
        return None

    def fold_ids(self, t: np.ndarray) -> np.ndarray:
        if self._fixed is not None:
            return self._fixed
        splitter = StratifiedKFold(n_splits=self.n_folds, shuffle=True, random_state=self.seed)
        return self._from_pairs(splitter.split(np.zeros(self.n), t))


def _resolve_outcome_model(model: Any, ridge_alpha: float, seed: int) -> tuple[Any, float | None]:
    """The regressor and, for a plain ridge, its alpha (closed-form path)."""
    if isinstance(model, str):
        if model == "ridge":
            return Ridge(alpha=ridge_alpha), float(ridge_alpha)
        if model == "gradient_boosting":
            return HistGradientBoostingRegressor(random_state=seed), None
        raise ValueError(
            f"unknown outcome_model {model!r}; use 'ridge', 'gradient_boosting' or a regressor."
        )
    if (
        type(model) is Ridge
        and model.fit_intercept
        and not model.positive
        and np.ndim(model.alpha) == 0
        and model.solver in ("auto", "cholesky")
    ):
        return model, float(model.alpha)
    if not hasattr(model, "fit") or not hasattr(model, "predict"):
        raise ValueError(f"outcome_model {model!r} is not a scikit-learn regressor.")
    return model, None
