"""Realistic :class:`Report` objects for reporter and gate tests, built through the models.

``sample_report()`` holds one finding of every shape a renderer must handle: per-group bars
(with a small-group warning), a forest plot with significant, non-significant and untested
rows, a propensity-overlap histogram, a windowed finding, an error, a skipped finding, a
warning, and a finding without a confidence interval. Statuses come from the thresholds
through :func:`audit_sdk.thresholds.evaluate_threshold`, as the runner computes them.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from audit_sdk.config import AuditConfig, config_sha256
from audit_sdk.report_model import (
    Finding,
    GroupEstimate,
    PluginRecord,
    Provenance,
    Report,
    SubjectInfo,
)
from audit_sdk.thresholds import Status, Threshold, evaluate_threshold

__all__ = [
    "finding",
    "group",
    "large_report",
    "make_provenance",
    "make_report",
    "sample_findings",
    "sample_report",
]

STARTED = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)


def make_provenance(**overrides: Any) -> Provenance:
    config = AuditConfig(title="Lifecycle audit of TinyRec", seed=7)
    values: dict[str, Any] = {
        "config": config.model_dump(mode="json"),
        "config_sha256": config_sha256(config),
        "config_path": "audits/tinyrec.yaml",
        "data_fingerprint": "sha256:4f9a1c0e7b3d5a2f8e6c1b0a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e",
        "dataset": "hetrec2011-lastfm-2k (1,892 users, 17,632 artists)",
        "package_version": "0.1.0.dev0",
        "python_version": "3.11.9",
        "platform": "Linux-6.1.0-x86_64-with-glibc2.36",
        "plugins": [
            PluginRecord(
                entry_point="group_fairness",
                distribution="audit-sdk",
                version="0.1.0.dev0",
                components={"detector": ["group_fairness"]},
            ),
            PluginRecord(
                entry_point="reporters",
                distribution="audit-sdk",
                version="0.1.0.dev0",
                components={"reporter": ["html", "json", "junit", "markdown"]},
            ),
            PluginRecord(
                entry_point="acme_detectors",
                distribution="acme-audit-plugins",
                version="2.3.1",
                status="failed",
                error="could not import 'acme.detectors': ModuleNotFoundError: No module named 'acme'",
            ),
        ],
        "seed": 7,
        "started_at": STARTED,
        "finished_at": STARTED + timedelta(minutes=3, seconds=41.5),
        "subject": SubjectInfo(
            name="tinyrec-v3",
            adapter="tinyrec",
            fingerprint="sha256:9e107d9d372bb6826bd81d3542a419d6",
            description={"parameters": 1_204_224, "vocab": 17_633},
        ),
        "baselines": [
            SubjectInfo(name="popularity", adapter="popularity", fingerprint="sha256:00aa"),
            SubjectInfo(name="item_knn", adapter="item_knn", fingerprint="sha256:11bb"),
        ],
    }
    values.update(overrides)
    return Provenance(**values)


def group(
    name: str,
    estimate: float | None,
    half_width: float | None = 0.05,
    *,
    n: int = 200,
    warning: str | None = None,
    significant: bool | None = None,
) -> GroupEstimate:
    low = high = None
    if estimate is not None and half_width is not None:
        low, high = estimate - half_width, estimate + half_width
    return GroupEstimate(
        group=name,
        n=n,
        estimate=estimate,
        ci_low=low,
        ci_high=high,
        warning=warning,
        significant=significant,
    )


def finding(
    detector: str,
    metric: str,
    *,
    estimate: float | None,
    ci: tuple[float | None, float | None] | None = None,
    threshold: Threshold | None = None,
    status: Status | None = None,
    explanation: str | None = None,
    **fields: Any,
) -> Finding:
    """A finding whose status follows from its threshold unless ``status`` is given."""
    low, high = ci if ci is not None else (None, None)
    if status is None:
        status = evaluate_threshold(threshold, estimate, low, high)
    return Finding(
        detector=detector,
        metric=metric,
        estimate=estimate,
        ci_low=low,
        ci_high=high,
        threshold=threshold,
        status=status,
        explanation=explanation or f"{metric} is {estimate}.",
        **fields,
    )


def sample_findings() -> list[Finding]:
    age_rows = [
        group("18-24", 0.214, 0.018, n=612),
        group("25-34", 0.198, 0.015, n=803),
        group("35-44", 0.171, 0.024, n=288),
        group("45-54", 0.152, 0.041, n=74),
        group("55+", 0.139, 0.083, n=17, warning="only 17 users (< 30): estimate is unstable"),
    ]
    country_rows = [
        group("US", 0.205, 0.014, n=540),
        group("UK", 0.199, 0.022, n=211),
        group("DE", 0.188, 0.025, n=164),
        group("BR", 0.176, 0.031, n=97),
        group("other", 0.181, 0.012, n=880),
    ]
    forest_rows = [
        group("tinyrec-v3 vs popularity", 0.061, 0.021, significant=True),
        group("tinyrec-v3 vs item_knn", 0.012, 0.019, significant=False),
        group("item_knn vs popularity", 0.049, 0.020, significant=True),
        group("tinyrec-v3 (30 d)", -0.034, 0.040, significant=False),
        group("tinyrec-v3 (365 d)", 0.021, None, significant=None),
    ]
    edges = [round(0.1 * i, 1) for i in range(11)]
    return [
        finding(
            "group_fairness",
            "ndcg@10:min_max_ratio",
            estimate=0.649,
            ci=(0.512, 0.803),
            confidence=0.95,
            ci_method="bootstrap-percentile",
            n=1794,
            groups=age_rows,
            group_by="age_bucket",
            subject="tinyrec-v3",
            threshold=Threshold(statistic="estimate", fail_below=0.8, warn_below=0.9),
            explanation=(
                "Users aged 55+ get NDCG@10 0.139, 65% of the best-served group (18-24, "
                "0.214); the 95% CI of the ratio is [0.512, 0.803]."
            ),
            warnings=["group 55+ has 17 users (< 30): its CI is wide"],
            chart="bars",
            reference="Ekstrand et al. 2018, 'All the cool kids', Eq. 2 (min/max group ratio)",
        ),
        finding(
            "group_fairness",
            "ndcg@10:min_max_ratio",
            estimate=0.859,
            ci=(0.774, 0.951),
            ci_method="bootstrap-percentile",
            n=1892,
            groups=country_rows,
            group_by="country",
            subject="tinyrec-v3",
            threshold=Threshold(statistic="estimate", fail_below=0.8, warn_below=0.9),
            explanation="Brazil is served worst: NDCG@10 ratio 0.859 of the best-served country.",
            chart="bars",
        ),
        finding(
            "group_fairness",
            "recall@10:difference",
            estimate=-0.021,
            ci=(-0.047, 0.004),
            n=1892,
            groups=[
                group("light", 0.101, 0.012, n=631),
                group("medium", 0.118, 0.011, n=630),
                group("heavy", 0.122, 0.013, n=631),
            ],
            group_by="activity",
            window="30d",
            threshold=Threshold(statistic="ci_low", fail_below=-0.1),
            explanation="Light listeners get slightly lower recall in the last 30 days.",
            chart="bars",
        ),
        finding(
            "popularity_bias",
            "arp:difference",
            estimate=0.041,
            ci=(0.022, 0.060),
            ci_method="paired bootstrap",
            n=1892,
            groups=forest_rows,
            threshold=Threshold(statistic="ci_low", fail_above=0.05, warn_above=0.02),
            explanation=(
                "Average recommendation popularity is higher than in users' profiles; the "
                "difference is significant against the popularity baseline."
            ),
            chart="forest",
            reference="Abdollahpouri et al. 2019, Eq. 1 (ARP)",
            details={"null_value": 0.0, "paired": True},
        ),
        finding(
            "causal_effects",
            "propensity_overlap",
            estimate=0.91,
            ci=(0.88, 0.94),
            n=1892,
            explanation="Treated and control propensity scores overlap well (91% common support).",
            chart="histogram",
            details={
                "histogram": {
                    "label": "propensity score",
                    "edges": edges,
                    "counts_treated": [2, 9, 31, 88, 140, 171, 150, 95, 40, 8],
                    "counts_control": [12, 48, 120, 190, 171, 130, 80, 33, 10, 1],
                },
                "estimator": "econml.dml.LinearDML",
            },
        ),
        finding(
            "counterfactual",
            "gender_flip_rate",
            estimate=None,
            status="error",
            explanation=(
                "The detector raised AdapterError: the tinyrec model file was not found at "
                "models/tinyrec-v3.pt."
            ),
            warnings=["traceback stored in report.json details"],
            details={"exception": "AdapterError", "duration_s": 0.42},
        ),
        finding(
            "exposure",
            "gini@10",
            estimate=None,
            status="skipped",
            explanation="Skipped: the adapter does not expose item scores (capability 'scores').",
        ),
        finding(
            "exposure",
            "catalog_coverage@10",
            estimate=0.0412,
            n=1892,
            threshold=Threshold(warn_below=0.05),
            explanation=(
                "Only 4.1% of the catalog is ever recommended; no CI (a census, not a sample)."
            ),
            warnings=["no confidence interval: coverage is a population quantity"],
        ),
    ]


def make_report(
    findings: list[Finding] | None = None,
    *,
    notes: list[str] | None = None,
    title: str = "Lifecycle audit of TinyRec",
    **provenance_overrides: Any,
) -> Report:
    report = Report.build(
        provenance=make_provenance(**provenance_overrides),
        findings=sample_findings() if findings is None else findings,
        notes=notes,
    )
    return report.model_copy(update={"title": title})


def sample_report() -> Report:
    return make_report(
        notes=[
            "Group 55+ has fewer than 30 users; treat its numbers as indicative.",
            "Bootstrap: 1000 resamples, seed 7.",
        ]
    )


def large_report(n_findings: int = 200, n_groups: int = 50, *, seed: int = 0) -> Report:
    """A big report (``n_findings`` findings of ``n_groups`` rows each) for speed checks."""
    rng = random.Random(seed)
    findings = []
    charts = ("bars", "forest")
    for i in range(n_findings):
        rows = []
        for j in range(n_groups):
            est = rng.gauss(0.2, 0.05)
            half = abs(rng.gauss(0.03, 0.01))
            rows.append(
                group(
                    f"artist group {j:02d}",
                    est,
                    half,
                    n=rng.randint(5, 500),
                    significant=j % 3 == 0,
                )
            )
        est = rng.uniform(0.6, 1.1)
        findings.append(
            finding(
                f"detector_{i % 7}",
                f"metric_{i}:ratio",
                estimate=est,
                ci=(est - 0.05, est + 0.05),
                n=1892,
                groups=rows,
                group_by=f"attribute_{i % 5}",
                threshold=Threshold(fail_below=0.8, warn_below=0.9),
                chart=charts[i % 2],
            )
        )
    return make_report(findings)
