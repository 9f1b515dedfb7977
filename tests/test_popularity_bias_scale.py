"""popularity_bias without item genres: calibration is skipped with a reason, the rest runs."""

from __future__ import annotations

import dataclasses

from audit_sdk.plugins.detectors.popularity_bias import PopularityBiasDetector

from audit_sdk import testing
from audit_sdk.data.tables import Catalog


def test_a_catalog_without_genres_skips_only_calibration() -> None:
    context = testing.make_context(n_users=300)
    catalog = Catalog(context.dataset.catalog.frame.drop(columns=["genres"]))
    context = dataclasses.replace(context, dataset=context.dataset.replace(catalog=catalog))
    findings = PopularityBiasDetector().detect(context)
    skipped = [f for f in findings if f.status == "skipped"]
    assert skipped and all(f.metric.startswith("calibration_kl") for f in skipped)
    assert all("no item genres" in (f.explanation or "") for f in skipped)
    ran = {f.metric for f in findings if f.status != "skipped"}
    assert {"arp", "aplt", "popularity_lift", "gini_exposure"} <= ran
    assert any(m.startswith("popularity_lift:group_gap") for m in ran)
