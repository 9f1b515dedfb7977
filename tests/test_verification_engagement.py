"""Engagement (KDD 2025 LLM4ECommerce, Sec. 5): QualityScore from a logged table, audited
without any model; the validation model recovers planted predictability (an oracle
embedding of prompt and tracks) and finds none with a random embedding; bad logs are clear."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from audit_sdk.plugins.detectors.verification_engagement import EngagementVerificationDetector

from audit_sdk.data.synthetic_world import DEFAULT_GENRES
from audit_sdk.testing import check_detector, make_context
from audit_sdk.verification.catalog_attributes import VerificationInputError
from audit_sdk.verification.engagement import (
    QualityWeights,
    quality_scores,
    validate_engagement_log,
    validation_model,
)
from tests.verification_embedders import OracleEmbedding, RandomEmbedding

GENRES = DEFAULT_GENRES[:6]


def planted_log(seed: int, n_prompts: int = 40, answers: int = 4) -> pd.DataFrame:
    """Answers to genre prompts; each track is on-genre with a random chance, and listeners
    play (and save) on-genre tracks more: engagement follows prompt-track agreement."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_prompts):
        genre = GENRES[p % len(GENRES)]
        prompt = f"{genre} music mix {p}"
        for a in range(answers):
            on_share = rng.uniform()
            n = int(rng.integers(5, 11))
            on = rng.uniform(size=n) < on_share
            tracks = [
                f"Song {p}-{a}-{i} - Band ({genre if hit else rng.choice(GENRES)})"
                for i, hit in enumerate(on)
            ]
            plays = rng.poisson(n * (0.5 + 4 * on.mean()))
            saves = rng.binomial(n, 0.05 + 0.4 * on.mean())
            rows.append(
                {
                    "prompt": prompt,
                    "tracks": " | ".join(tracks),
                    "plays": plays,
                    "saves": saves,
                    "saved_plays": rng.poisson(saves * (1 + 3 * on.mean())),
                    "market": "A" if p % 2 else "B",
                }
            )
    return pd.DataFrame(rows)


def test_quality_score_formula() -> None:
    log = validate_engagement_log(
        pd.DataFrame(
            {
                "prompt": ["x", "y"],
                "tracks": ["a - b | c - d", "1. e - f\n2. g - h\n3. i - j\n4. k - l"],
                "plays": [4, 0],
                "saves": [1, 0],
                "saved_plays": [3, 5],
            }
        ),
        source="t",
    )
    score = quality_scores(log, QualityWeights(alpha=1.0, beta=2.0, gamma=0.5))
    # 4/2 + 2*1/2 + 0.5*3/1 ; 0 + 0 + 0.5*5/max(1, 0)
    np.testing.assert_allclose(score.to_numpy(), [2 + 1 + 1.5, 2.5])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_validation_model_recovers_planted_predictability(seed: int) -> None:
    log = validate_engagement_log(planted_log(seed), source="planted")
    target = quality_scores(log)
    oracle = validation_model(
        log, target, OracleEmbedding().embed, rng=np.random.default_rng(seed), n_resamples=200
    )
    assert oracle.r2.low > 0.1 and oracle.spearman.low > 0.3
    noise = validation_model(
        log, target, RandomEmbedding().embed, rng=np.random.default_rng(seed), n_resamples=200
    )
    assert noise.r2.estimate < 0.1 and noise.spearman.low < 0.15
    assert oracle.r2.estimate > noise.r2.high


def test_logged_table_audits_without_a_model(tmp_path: Path) -> None:
    path = tmp_path / "engagement.csv"
    planted_log(0, n_prompts=24, answers=3).rename(columns={"prompt": "query"}).to_csv(
        path, index=False
    )
    detector = EngagementVerificationDetector(
        EngagementVerificationDetector.Params(
            log=path, columns={"prompt": "query"}, group_by=["market"]
        )
    )
    context = make_context(n_users=60, subject="popularity")  # no model generates anything
    findings = {(f.metric, f.group_by): f for f in check_detector(detector, context)}
    by_prompt = findings[("engagement:quality_score", "prompt")]
    assert by_prompt.n == 24 and len(by_prompt.groups) == 24
    assert by_prompt.ci_low < by_prompt.estimate < by_prompt.ci_high
    market = findings[("engagement:quality_score", "market")]
    assert {g.group for g in market.groups} == {"A", "B"}
    r2 = findings[("engagement:validation_r2", None)]
    assert r2.status != "skipped" and r2.ci_low <= r2.estimate <= r2.ci_high


def test_bad_logs_are_skipped_findings_naming_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame(
        {
            "prompt": ["x", "y"],
            "tracks": ["a - b", "c - d"],
            "plays": [1, -2],
            "saves": [0, 0],
            "saved_plays": [0, 0],
        }
    ).to_csv(path, index=False)
    detector = EngagementVerificationDetector(EngagementVerificationDetector.Params(log=path))
    findings = detector.detect(make_context(n_users=60, subject="popularity"))
    assert all(f.status == "skipped" for f in findings)
    assert "bad.csv: row 2, column 'plays'" in findings[0].explanation
    with pytest.raises(VerificationInputError, match="lists no track"):
        validate_engagement_log(
            pd.DataFrame(
                {"prompt": ["x"], "tracks": ["   "], "plays": [1], "saves": [0], "saved_plays": [0]}
            ),
            source="s",
        )
    with pytest.raises(VerificationInputError, match="missing column"):
        validate_engagement_log(pd.DataFrame({"prompt": ["x"]}), source="s")
