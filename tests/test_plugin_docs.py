"""Parameters you can find: `audit-sdk plugins NAME` and the config schema with plugin params."""

from __future__ import annotations

import json

import jsonschema
import pytest
from audit_sdk.plugins.detectors.causal_effects import CausalEffectsParams
from typer.testing import CliRunner

from audit_sdk.cli import app
from audit_sdk.config import AuditConfig
from audit_sdk.plugin_docs import config_schema, parameter_docs, render_plugin
from audit_sdk.testing import make_host


def test_parameter_docs_read_type_default_and_description() -> None:
    docs = {d.name: d for d in parameter_docs(CausalEffectsParams)}
    assert docs["folds"].type == "int" and docs["folds"].default == "5"
    assert docs["folds"].description == "cross-fitting folds"
    assert "continuous" in docs["binarization"].type
    assert docs["covariates"].default is not None and "age" in docs["covariates"].default


def test_plugins_name_prints_every_parameter() -> None:
    result = CliRunner().invoke(app, ["plugins", "causal_effects"])
    assert result.exit_code == 0, result.output
    for name in CausalEffectsParams.model_fields:
        assert f"    {name}: " in result.output
    assert "default thresholds:" in result.output and "ate:*" in result.output
    logged = CliRunner().invoke(app, ["plugins", "logged_outputs"])
    assert "adapter logged_outputs" in logged.output
    assert "dataset_loader logged_outputs" in logged.output
    assert "path: str (path) (required)" in logged.output
    assert "share_columns: list[ShareRule]" in logged.output


def test_unknown_plugin_name_is_one_clear_error() -> None:
    result = CliRunner().invoke(app, ["plugins", "causal_effect"])
    assert result.exit_code == 2
    assert "no plugin named 'causal_effect'" in result.output
    assert "causal_effects" in result.output


def test_config_schema_validates_params_against_the_named_plugin() -> None:
    schema = config_schema(make_host(), AuditConfig.model_json_schema())
    assert "detector.causal_effects.params" in schema["$defs"]
    assert "adapter.logged_outputs.params" in schema["$defs"]
    assert "dataset_loader.tabular.params" in schema["$defs"]
    good = {"detectors": [{"name": "causal_effects", "params": {"folds": 3}}]}
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError, match="fold"):
        jsonschema.validate(
            {"detectors": [{"name": "causal_effects", "params": {"fold": 3}}]}, schema
        )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {
                "subject": {
                    "adapter": "logged_outputs",
                    "params": {"share_columns": [{"prefix": 3}]},
                }
            },
            schema,
        )


def test_schema_command_includes_plugin_parameters() -> None:
    result = CliRunner().invoke(app, ["schema", "config"])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert "detector.profile_fidelity.params" in data["$defs"]
    assert render_plugin(make_host(), "tabular").startswith("dataset_loader tabular")
