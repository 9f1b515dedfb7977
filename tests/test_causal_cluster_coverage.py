"""causal_effects with repeated users: resampling users covers, resampling rows does not.

Planted world: 150 users, each with 4 rows (profiles: windows x generators) that share the
user's exposure (a heavy listener of a genre or not), covariates and a user effect on the
outcome; the true effect of exposure is 0.3. Over 60 seeds, the percentile bootstrap that
resamples users (``groups``, as the detector passes for profile units) covers the truth at
about the nominal 95%; one that resamples rows treats a user's four rows as four independent
users and under-covers. The same holds for the influence-function (cluster-robust) interval."""

from __future__ import annotations

import numpy as np

from audit_sdk.stats.aipw import aipw_ate

TRUE_ATE = 0.3


def _world(seed: int, n_users: int = 150, rows: int = 4):
    rng = np.random.default_rng(seed)
    w_user = rng.normal(size=(n_users, 3))
    p = 1 / (1 + np.exp(-(0.8 * w_user[:, 0] - 0.4 * w_user[:, 1])))
    t_user = (rng.random(n_users) < p).astype(int)
    effect = rng.normal(0, 1.0, n_users)  # shared by a user's rows
    users = np.repeat(np.arange(n_users), rows)
    w = w_user[users] + rng.normal(0, 0.05, size=(len(users), 3))
    y = (
        w_user[users, 0]
        + 0.5 * w_user[users, 2]
        + TRUE_ATE * t_user[users]
        + effect[users]
        + rng.normal(0, 0.3, len(users))
    )
    return y, t_user[users], w, users


def test_user_resampling_covers_and_row_resampling_under_covers() -> None:
    covered = {"users": [], "rows": [], "users_if": [], "rows_if": []}
    for seed in range(60):
        y, t, w, users = _world(seed)
        options = {"min_units_per_arm": 10, "seed": seed}
        by_user = aipw_ate(y, t, w, groups=users, bootstrap=300, **options)
        by_row = aipw_ate(y, t, w, bootstrap=300, **options)
        if_user = aipw_ate(y, t, w, groups=users, **options)
        if_row = aipw_ate(y, t, w, **options)
        for key, result in (
            ("users", by_user),
            ("rows", by_row),
            ("users_if", if_user),
            ("rows_if", if_row),
        ):
            assert result.ci_low is not None and result.ci_high is not None
            covered[key].append(result.ci_low <= TRUE_ATE <= result.ci_high)
        assert "clusters" in (by_user.ci_method or "") and "units" in (by_row.ci_method or "")
    rates = {k: float(np.mean(v)) for k, v in covered.items()}
    assert rates["users"] >= 0.88 and rates["users_if"] >= 0.88, rates
    assert rates["rows"] <= 0.80 and rates["rows_if"] <= 0.80, rates
