"""Calibrated re-ranking (Steck 2018): the mitigator hook end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from audit_sdk.plugins.mitigators.calibrated_reranking import calibrated_rerank

from audit_sdk.config import parse_config
from audit_sdk.runner import AuditRunner


def test_greedy_selection_matches_the_target_genre_mix() -> None:
    # Ten candidates: the top five by score are all genre 0; the user listens 50/50.
    scores = np.linspace(1.0, 0.1, 10)
    genres = np.zeros((10, 2))
    genres[:5, 0] = 1.0
    genres[5:, 1] = 1.0
    target = np.array([0.5, 0.5])
    plain = calibrated_rerank(scores, genres, target, k=4, weight=0.0, alpha=0.01)
    assert plain.tolist() == [0, 1, 2, 3]
    calibrated = calibrated_rerank(scores, genres, target, k=4, weight=0.9, alpha=0.01)
    picked = genres[calibrated].sum(axis=0)
    assert picked.tolist() == [2.0, 2.0]
    # Within each genre the better-scored candidates win.
    assert sorted(calibrated.tolist()) == [0, 1, 5, 6]


def test_mitigation_reruns_detectors_and_reduces_miscalibration(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "dataset": {"params": {"n_users": 800}},
            "baselines": ["popularity"],
            "detectors": [{"name": "popularity_bias", "params": {"group_metrics": []}}],
            "mitigators": [{"name": "calibrated_reranking", "params": {"weight": 0.7}}],
            "stats": {"bootstrap_resamples": 300},
            "outputs": {"formats": ["json"]},
        }
    )
    report = AuditRunner(cfg, quiet=True, out_dir=tmp_path).run().report
    kl = {f.subject: f for f in report.findings if f.metric == "calibration_kl"}
    before, after = kl["item_knn"], kl["item_knn+calibrated_reranking"]
    assert after.ci_high < before.ci_low  # a real, significant reduction
    assert after.mitigation is not None
    assert after.mitigation.mitigator == "calibrated_reranking"
    assert after.mitigation.changed == ["outputs"]
    assert after.mitigation.before == "item_knn"
    subjects = {f.subject for f in report.findings}
    assert subjects == {"item_knn", "item_knn+calibrated_reranking"}
    # the mitigated subject is its own model in the provenance, with its own fingerprint
    (mitigated,) = report.provenance.mitigated
    assert mitigated.name == "item_knn+calibrated_reranking"
    assert mitigated.fingerprint != report.provenance.subject.fingerprint
