"""Sampling expansion end to end, on a world where the fixed 15-pair sample misses generalists'
genres (:func:`tests.sampling_worlds.breadth_world`): the mitigator narrows the generalist gap
in downstream utility (paired CI of the change below zero, over several seeds), leaves
specialists' prompts and profiles byte for byte as they were (served from the generation cache,
not re-generated), and the study's n = 15 vs n = 30 diagnosis says "sampling limit" for a
writer that summarises the whole sample and "summarising limit" for one that names only the
dominant genres."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from audit_sdk import testing
from audit_sdk.config import parse_config
from audit_sdk.report_model import Finding
from audit_sdk.runner import AuditResult, AuditRunner

from . import sampling_worlds
from .sampling_worlds import BreadthWorldLoader

pytestmark = pytest.mark.slow


def _audit(tmp_path: Path, seed: int, writer: str, mitigators: list[dict[str, Any]]) -> AuditResult:
    config = {
        "seed": seed,
        "dataset": {"loader": "breadth_world", "params": {"seed": seed, "n_users": 200}},
        "subject": {"adapter": "popularity"},
        "baselines": [],
        "profiles": {
            "enabled": True,
            "generators": [
                {
                    "name": "writer",
                    "adapter": "callable",
                    "params": {"target": f"tests.sampling_worlds:{writer}"},
                }
            ],
            "cache": str(tmp_path / f"cache-{seed}.sqlite"),
        },
        "models": {
            "encoder": {
                "adapter": "callable",
                "params": {"target": "tests.sampling_worlds:embed", "capabilities": ["embed"]},
            }
        },
        "detectors": [
            {"name": "sampling_expansion_effect", "params": {"utility": {"negatives": 50}}}
        ],
        "mitigators": mitigators,
        "stats": {"bootstrap_resamples": 400},
        "outputs": {"formats": ["json"]},
    }
    host = testing.make_host()
    with testing.inline_plugin(host, BreadthWorldLoader):
        return AuditRunner(
            parse_config(config), host=host, quiet=True, out_dir=tmp_path / f"out-{seed}"
        ).run()


def _findings(result: AuditResult, subject: str) -> dict[str, Finding]:
    return {f.metric: f for f in result.report.findings if f.subject == subject}


POLICY = {"name": "sampling_expansion"}
DIAGNOSIS = {"name": "sampling_expansion", "params": {"diagnosis_n": 30}}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expansion_narrows_the_gap_and_reuses_specialists_profiles(
    tmp_path: Path, seed: int
) -> None:
    sampling_worlds.PROMPTS_SENT.clear()
    result = _audit(tmp_path, seed, "write_genre_mix_counted", [POLICY])
    before = result.context
    assert before is not None and before.subject.profiles is not None
    (after,) = result.mitigated
    assert after.subject.profiles is not None
    found = _findings(result, after.subject.name)
    gap = found["expansion:gs_gap:downstream_ndcg@10:quintile_gap_change"]
    assert gap.ci_high is not None and gap.ci_high < 0, gap.explanation  # narrower
    assert gap.details["before"][0] > 0.2  # the planted gap: generalists served worse
    ndcg = found["expansion:downstream_ndcg@10:change"]
    generalists = ndcg.groups[0]
    assert generalists.ci_low is not None and generalists.ci_low > 0
    assert ndcg.groups[-1].estimate == 0.0  # specialists: nothing changed

    # specialists (GS at or above the threshold): same sample rows, prompt and text
    details = after.mitigation.details if after.mitigation else {}
    tau = details["threshold_used"]
    gs = before.features.get("gs_score")
    assert isinstance(gs, pd.Series)
    keep = set(gs[gs >= tau].index.astype(str))
    assert details["users_unchanged"] == len(keep) and details["users_expanded"] > 50
    cols = ["user_id", "prompt", "prompt_sha256", "text"]
    b = before.subject.profiles.set_index("user_id", drop=False)[cols]
    a = after.subject.profiles.set_index("user_id", drop=False)[cols]
    kept = sorted(keep & set(b.index))
    pd.testing.assert_frame_equal(b.loc[kept], a.loc[kept])
    assert before.samples is not None and after.samples is not None
    pd.testing.assert_frame_equal(
        before.samples[before.samples["user_id"].isin(kept)].reset_index(drop=True),
        after.samples[after.samples["user_id"].isin(kept)].reset_index(drop=True),
    )
    # reused from the cache, not re-generated: the writer saw only the changed prompts
    changed = (b["prompt_sha256"] != a.loc[b.index, "prompt_sha256"]).sum()
    cached = after.subject.profiles["cached"]
    assert int(cached.sum()) == len(a) - changed
    assert sum(sampling_worlds.PROMPTS_SENT) == len(b) + changed
    cost = found["expansion:prompt_chars:added"]
    assert cost.details["profiles_changed"] == changed > 0
    assert cost.details["generated_uncached"] == changed
    assert cost.estimate is not None and cost.estimate > 0


def test_diagnosis_tells_sampling_from_summarising_limits(tmp_path: Path) -> None:
    faithful = _audit(tmp_path / "faithful", 3, "write_genre_mix", [DIAGNOSIS])
    limited = _audit(tmp_path / "limited", 3, "write_dominant_genres", [DIAGNOSIS])
    verdicts = {}
    for label, result in (("faithful", faithful), ("limited", limited)):
        (after,) = result.mitigated
        assert after.subject.name.endswith("+sampling_expansion(n=30)")
        finding = _findings(result, after.subject.name)["expansion:diagnosis:downstream_ndcg@10"]
        assert finding.ci_low is not None and finding.ci_high is not None
        verdicts[label] = finding
    assert verdicts["faithful"].details["verdict"] == "sampling limit"
    assert (verdicts["faithful"].ci_low or 0.0) > 0
    assert verdicts["limited"].details["verdict"] == "summarising limit"
    assert "summarising limit" in verdicts["limited"].explanation
    assert verdicts["limited"].details["n_after"] == 30
