"""The HTML report's mitigation section: before beside after, and a mitigator's own tables
and curves (reports/mitigation_section.py)."""

from __future__ import annotations

from audit_sdk.reports.html_reporter import render_html
from audit_sdk.reports.mitigation_section import mitigation_sections

from audit_sdk.report_model import MitigationRecord, ResultCurves, ResultTable

from .report_factories import finding, make_report


def _record(**extra: object) -> MitigationRecord:
    return MitigationRecord(
        mitigator="gdrt",
        summary="tuned <b>tinyrec</b> with Group DRO",
        before="tinyrec",
        before_fingerprint="0" * 64,
        changed=["adapter"],
        **extra,  # type: ignore[arg-type]
    )


def _pair(
    metric: str,
    before: tuple[float, float, float],
    after: tuple[float, float, float],
    record: MitigationRecord,
    **fields: object,
) -> list:
    return [
        finding(
            "baseline_comparison",
            metric,
            estimate=before[0],
            ci=before[1:],
            subject="tinyrec",
            status="pass",
            **fields,
        ),
        finding(
            "baseline_comparison",
            metric,
            estimate=after[0],
            ci=after[1:],
            subject="tinyrec+gdrt",
            status="pass",
            mitigation=record,
            **fields,
        ),
    ]


def test_findings_on_both_subjects_are_set_before_beside_after() -> None:
    record = _record()
    report = make_report(
        _pair(
            "ndcg@10", (0.10, 0.08, 0.12), (0.20, 0.18, 0.22), record, direction="higher_is_better"
        )
        + _pair("coverage@10", (0.30, 0.2, 0.4), (0.32, 0.25, 0.45), record)
        + _pair(
            "mgu@10", (0.30, 0.28, 0.32), (0.40, 0.38, 0.42), record, direction="lower_is_better"
        )
    )
    (section,) = mitigation_sections(report)
    assert section["subject"] == "tinyrec+gdrt"
    rows = {r["metric"]: r for r in section["rows"]}
    assert rows["ndcg@10"]["reading"] == "better"
    assert abs(rows["ndcg@10"]["change"] - 0.10) < 1e-12
    assert rows["coverage@10"]["reading"] == "intervals overlap"  # never called a change
    assert rows["mgu@10"]["reading"] == "worse"


def test_a_mitigators_tables_and_curves_are_rendered_escaped() -> None:
    record = _record(
        tables=[
            ResultTable(
                title="arms <compared>",
                columns=["arm", "NDCG"],
                rows=[["before", 0.1], ["gdrt", 0.2]],
            )
        ],
        curves=[
            ResultCurves(
                title="gdrt: group weight",
                x_label="step",
                y_label="q",
                x=[0, 1, 2],
                series={"group 0": [0.5, 0.6, 0.7], "group 1": [0.5, 0.4, None]},
            )
        ],
    )
    report = make_report(_pair("ndcg@10", (0.1, 0.08, 0.12), (0.2, 0.18, 0.22), record))
    page = render_html(report)
    assert "Mitigation: gdrt" in page
    assert "tuned &lt;b&gt;tinyrec&lt;/b&gt; with Group DRO" in page
    assert "arms &lt;compared&gt;" in page and "<compared>" not in page
    assert page.count("<polyline") >= 2  # one per group
    assert "group 1" in page


def test_a_report_without_mitigation_has_no_section() -> None:
    report = make_report([finding("baseline_comparison", "ndcg@10", estimate=0.1, status="pass")])
    assert mitigation_sections(report) == []
    assert "Mitigation:" not in render_html(report)
