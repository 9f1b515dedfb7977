"""A logged audit of a study-shaped table (examples/study_profiles.yaml) through the runner:
the generalist gap on the logged GS-score and downstream NDCG, relative ratings, the ANOVA,
the rating-utility correlation and the per-generator regression of ratings on user
characteristics, from one config file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from audit_sdk.config import load_config
from audit_sdk.runner import AuditRunner

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def write_study_log(directory: Path, *, n_users: int = 150, seed: int = 0) -> None:
    rng = np.random.default_rng([seed, 2025])
    uid = [f"U{i:04d}" for i in range(n_users)]
    gs = rng.uniform(0.3, 0.9, n_users)
    age = rng.integers(18, 70, n_users)
    genres = ["pop", "rock", "jazz", "metal"]
    shares = rng.dirichlet(np.ones(len(genres)), n_users)  # the user's genre mix
    countries = rng.dirichlet(np.ones(2), n_users)
    rows = []
    for generator, shift in (("gpt-x", 0.0), ("llama-y", 0.4)):
        for window in ("30d", "1y"):
            ndcg = np.clip(0.1 + 0.3 * gs + 0.05 * rng.standard_normal(n_users), 0, 1)
            noise = 0.6 * rng.standard_normal((2, n_users))
            # planted: gpt-x rates metal listeners' profiles lower (-2 per unit metal share)
            metal = -2.0 * shares[:, 3] if generator == "gpt-x" else 0.0
            rating = np.clip(np.round(4.0 + shift + 2 * ndcg + metal + noise[0], 1), 1, 7)
            baseline = np.clip(np.round(3.5 + shift + noise[1], 1), 1, 7)
            rows.append(
                pd.DataFrame(
                    {
                        "uid": uid,
                        "generator": generator,
                        "period": window,
                        "profile": "Late-night jazz and some metal.",
                        "rating": rating,
                        "baseline_rating": baseline,
                        "gs_score": gs.round(4),
                        "downstream_ndcg@10": ndcg.round(4),
                        **{g: shares[:, i].round(4) for i, g in enumerate(genres)},
                        "cty_US": countries[:, 0].round(4),
                        "cty_GB": countries[:, 1].round(4),
                    }
                )
            )
    pd.concat(rows, ignore_index=True).to_csv(directory / "study_log.csv", index=False)
    pd.DataFrame({"uid": uid, "age": age}).to_csv(directory / "users.csv", index=False)
    longterm = np.clip(shares + 0.05 * rng.standard_normal(shares.shape), 0, None)
    longterm = 100 * longterm / longterm.sum(axis=1, keepdims=True)  # percent, as logged
    pd.DataFrame({"uid": uid, **{f"lt_{g}": longterm[:, i].round(2) for i, g in
                                 enumerate(genres)}}).to_csv(directory / "longterm.csv",
                                                             index=False)  # fmt: skip


def test_the_study_example_runs_through_the_runner(tmp_path: Path) -> None:
    write_study_log(tmp_path)
    config_path = tmp_path / "audit.yaml"
    shutil.copy(EXAMPLES / "study_profiles.yaml", config_path)
    result = AuditRunner(
        load_config(config_path), config_path=config_path, quiet=True, out_dir=tmp_path / "out"
    ).run()
    findings = {(f.detector, f.metric): f for f in result.report.findings}
    assert not [f.explanation for f in result.report.findings if f.status == "error"]
    gap = findings["generalist_gap", "gs_gap:downstream_ndcg@10:quintile_gap"]
    assert gap.status == "fail" and gap.details["level"] == "profile"
    assert "cluster bootstrap" in gap.details["resampled_unit"]
    assert ("generalist_gap", "gs_gap:downstream_ndcg@10@llama-y:slope") in findings
    relative = findings["profile_ratings", "rating:relative"]
    assert relative.ci_low is not None and relative.ci_low > 0
    assert findings["profile_ratings", "rating:anova:generator"].estimate > 0.01  # type: ignore[operator]
    rho = findings["profile_ratings", "rating:spearman:downstream_ndcg@10"]
    assert rho.ci_low is not None and rho.ci_low > 0
    slope = findings["profile_ratings", "rating:regression:gs_score"]  # planted: ~0.6 per GS
    assert slope.ci_low is not None and slope.ci_low > 0 and len(slope.groups) == 2
    assert "cluster-robust" in slope.explanation
    age = findings["profile_ratings", "rating:regression:age"]  # planted: none
    assert age.ci_low is not None and age.ci_high is not None and age.ci_low < 0 < age.ci_high
    # The causal forest plot: genre effects on the rating, per generator, adjusted for the
    # long-term shares; the planted metal penalty of gpt-x is found, llama-y has none.
    causal = {f.label: f for f in result.report.findings if f.detector == "causal_effects"}
    gpt, llama = causal["ate:rating[gpt-x]"], causal["ate:rating[llama-y]"]
    assert gpt.chart == "forest" and any(
        c.startswith("longterm_share:") for c in gpt.details["covariates"]
    )
    metal = {g.group: g for g in gpt.groups}["metal"]
    assert metal.significant and metal.ci_high is not None and metal.ci_high < 0
    assert not {g.group: g for g in llama.groups}["metal"].significant
    assert (tmp_path / "out" / "report.html").is_file()
