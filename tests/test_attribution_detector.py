"""The attribution detector on TinyRec inside a real audit context, and its skipped findings."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from audit_sdk.adapters.huggingface_adapter import HuggingFaceAdapter
from audit_sdk.plugins.detectors.attribution import (
    RATIO,
    SHARE,
    AttributionDetector,
    AttributionParams,
    recommendation_attribution_prompts,
)

from audit_sdk.attribution import attribute
from audit_sdk.config import parse_config
from audit_sdk.interfaces import AuditContext
from audit_sdk.pipeline.detection_stage import missing_requirement
from audit_sdk.runner import AuditRunner
from audit_sdk.testing import check_detector, make_context, make_host

from .attribution_fixtures import tiny_model_dir

WORLD = {"seed": 3, "n_users": 120, "n_artists": 30, "mean_tracks_per_artist": 4.0}
WORLD["mean_events_per_user"] = 50.0


def tinyrec_context(model_dir: Path) -> AuditContext:
    config = {
        "seed": 0,
        "dataset": {"loader": "synthetic", "params": WORLD},
        "subject": {"adapter": "huggingface", "params": {"model_dir": str(model_dir)}},
        "stats": {"bootstrap_resamples": 200},
        "outputs": {"formats": []},
        "detectors": [],
    }
    runner = AuditRunner(parse_config(config, source="test"), host=make_host())
    return runner.build_context()


@pytest.fixture(scope="module")
def context() -> AuditContext:
    return tinyrec_context(tiny_model_dir())


def test_findings_carry_cis_groups_and_report_details(context) -> None:
    detector = AttributionDetector(AttributionParams(max_users=24, max_history=4))
    findings = check_detector(detector, context)
    by_metric = {f.metric: f for f in findings}
    share, ratio = by_metric[SHARE], by_metric[RATIO]
    assert share.n == 24 and 0 <= share.ci_low <= share.estimate <= share.ci_high <= 1
    assert ratio.threshold is not None and ratio.threshold.statistic == "ci_low"
    assert share.groups and all(g.n > 0 for g in share.groups)
    details = share.details
    assert {"task", "history", "answer_prefix(y<t)"} <= set(details["fields"])
    assert details["recency"][0]["recency"] == 0
    extreme = details["extreme_prompts"]
    assert len(extreme) == 5
    assert "".join(s["text"] for s in extreme[0]["spans"]).startswith("Recommend the next")


def test_the_prompts_are_those_the_model_is_asked(context) -> None:
    prompts, targets = recommendation_attribution_prompts(
        context, max_users=5, max_history=4, group_by=None
    )
    adapter = context.adapter
    assert isinstance(adapter, HuggingFaceAdapter)
    ranker_prompt = adapter._ranker().prompt  # the prompt recommend() ranks from
    user = prompts[0].prompt_id.removeprefix("user ")
    history = adapter.histories_[user]
    expected = ranker_prompt(history[-4:])
    assert prompts[0].text == expected
    result = attribute(adapter, prompts, targets)
    assert len(result) == 5 and result.engine == "tokens"


def test_an_adapter_without_scoring_is_skipped_with_the_reason() -> None:
    context = make_context(n_users=60)  # item_knn: recommend only
    reason = missing_requirement(AttributionDetector(), context)
    assert reason is not None and "'score'" in reason


def test_the_html_report_has_the_attribution_section(context) -> None:
    from audit_sdk.reports.html_reporter import render_html

    from .report_factories import make_report

    detector = AttributionDetector(AttributionParams(max_users=12, max_history=3))
    findings = detector.detect(context)
    share = next(f for f in findings if f.metric == SHARE)
    # A title with markup must come out escaped, never as a tag.
    spans = share.details["extreme_prompts"][0]["spans"]
    spans[1] = {**spans[1], "text": "<script>alert(1)</script>\n"}
    page = render_html(make_report(findings))
    assert "Feature-ablation attribution" in page
    assert "Attribution per prompt field" in page and "Attribution by history position" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert page.count('class="faa-prompt"') == 5
