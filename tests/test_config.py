"""Config files: clear messages for every kind of mistake, and a published schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audit_sdk.cli import app
from audit_sdk.config import AuditConfig, config_sha256, load_config, parse_config
from audit_sdk.errors import ConfigError


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_a_complete_audit() -> None:
    cfg = parse_config({})
    assert cfg.dataset.loader == "synthetic"
    assert [d.name for d in cfg.detectors] == [
        "baseline_comparison",
        "group_fairness",
        "popularity_bias",
        "profile_fidelity",
        "causal_effects",
    ]
    assert cfg.profiles.enabled is False
    assert cfg.outputs.formats == ["json", "html", "junit", "markdown"]


def test_yaml_and_toml_give_the_same_config(tmp_path: Path) -> None:
    yaml_path = _write(
        tmp_path,
        "a.yaml",
        "seed: 7\nsubject:\n  adapter: popularity\n  k: 20\ndetectors:\n"
        "  - name: group_fairness\n    thresholds:\n      '*:min_max_ratio': {statistic: ci_low, fail_below: 0.5}\n",
    )
    toml_path = _write(
        tmp_path,
        "a.toml",
        'seed = 7\n[subject]\nadapter = "popularity"\nk = 20\n[[detectors]]\nname = "group_fairness"\n'
        '[detectors.thresholds."*:min_max_ratio"]\nstatistic = "ci_low"\nfail_below = 0.5\n',
    )
    a, b = load_config(yaml_path), load_config(toml_path)
    assert a == b
    assert config_sha256(a) == config_sha256(b)
    assert a.detectors[0].thresholds["*:min_max_ratio"].fail_below == 0.5


def test_unknown_field_suggests_the_right_one(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.yaml", "subject:\n  adaptor: popularity\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "subject.adaptor: unknown field" in message
    assert "Did you mean 'adapter'?" in message


def test_wrong_value_names_field_value_and_what_is_allowed(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.yaml", "split:\n  strategy: sideways\n  test_items: -3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert 'split.strategy = "sideways"' in message
    assert "'auto', 'time' or 'random'" in message
    assert "split.test_items = -3" in message
    assert "greater than or equal to 1" in message


def test_threshold_without_limits_is_rejected() -> None:
    with pytest.raises(ConfigError, match="at least one of warn_above"):
        parse_config({"detectors": [{"name": "x", "thresholds": {"m": {"statistic": "ci_low"}}}]})


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.yaml", "seed: 1\nsubject: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line \d+, column \d+\)"):
        load_config(path)


def test_missing_file_and_wrong_extension(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    path = _write(tmp_path, "audit.ini", "[x]\n")
    with pytest.raises(ConfigError, match=r"use \.yaml, \.yml or \.toml"):
        load_config(path)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "list.yaml", "- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(path)


def test_relative_data_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_DATA", "/data/root")
    path = _write(
        tmp_path,
        "audit.yaml",
        "dataset:\n  loader: tabular\n  params:\n    interactions: logs/plays.csv\n"
        "    catalog: $MY_DATA/catalog.csv\n",
    )
    cfg = load_config(path)
    monkeypatch.chdir("/")  # the working directory must not matter
    # path parameters resolve by type when the plugin is made, against the config's folder
    from audit_sdk.pipeline import plan_audit
    from audit_sdk.testing import make_host

    params = plan_audit(cfg.model_copy(update={"baselines": []}), make_host()).loader.params
    assert params.interactions == str(tmp_path / "logs" / "plays.csv")  # type: ignore[attr-defined]
    assert params.catalog == "/data/root/catalog.csv"  # type: ignore[attr-defined]


def test_cli_reports_a_bad_config_without_a_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.yaml", "stats:\n  confidence: 3\n")
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "stats.confidence = 3" in result.output
    assert "Traceback" not in result.output


def test_unknown_plugin_in_config_is_a_clear_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.yaml", "detectors:\n  - name: group_fairnes\n")
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "no detector named 'group_fairnes'" in result.output
    assert "Did you mean 'group_fairness'" in result.output


def test_bad_plugin_params_name_the_plugin(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "bad.yaml",
        "detectors:\n  - name: popularity_bias\n    params:\n      head_share: 2\n",
    )
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "detectors[0].params (detector 'popularity_bias'" in result.output
    assert "head_share = 2" in result.output


@pytest.mark.parametrize("kind", ["config", "report", "policy"])
def test_schema_command_prints_json_schema(kind: str) -> None:
    import jsonschema

    result = CliRunner().invoke(app, ["schema", kind])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    if kind == "config":
        jsonschema.validate(AuditConfig().model_dump(mode="json"), schema)
