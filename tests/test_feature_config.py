"""The ``features:`` config section sets user-feature parameters (e.g. the GS-score's SVD
dimensions and minimum items); a misspelled feature or a bad value is a clear config error."""

from __future__ import annotations

import pytest

from audit_sdk.config import AuditConfig
from audit_sdk.errors import ConfigError
from audit_sdk.pipeline.plan import plan_audit
from audit_sdk.testing import make_host


def test_feature_params_come_from_the_config() -> None:
    config = AuditConfig.model_validate(
        {"features": {"gs_score": {"dimensions": 8, "min_items": 3}}}
    )
    plan = plan_audit(config, make_host())
    params = plan.features["gs_score"].params
    assert params.dimensions == 8 and params.min_items == 3  # type: ignore[attr-defined]
    default = plan_audit(AuditConfig(), make_host()).features["gs_score"].params
    assert default.dimensions == 64  # type: ignore[attr-defined]


def test_unknown_feature_names_the_registered_ones() -> None:
    config = AuditConfig.model_validate({"features": {"gs_scor": {"dimensions": 8}}})
    with pytest.raises(ConfigError, match=r"features\.gs_scor: no user feature.*gs_score"):
        plan_audit(config, make_host())


def test_bad_feature_value_names_the_field() -> None:
    config = AuditConfig.model_validate({"features": {"gs_score": {"dimensions": 1}}})
    with pytest.raises(ConfigError, match=r"(?s)features\.gs_score.*dimensions = 1"):
        plan_audit(config, make_host())
