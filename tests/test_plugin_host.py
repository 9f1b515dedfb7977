"""The plugin host: entry points, registration, duplicates, allow/block lists, isolation."""

from __future__ import annotations

import importlib
import inspect
import sys
import time
from pathlib import Path

import pytest

from audit_sdk import hookimpl, hookspecs
from audit_sdk.errors import DuplicatePluginError, PluginLoadError, UnknownPluginError
from audit_sdk.interfaces import Detector
from audit_sdk.plugin_host import PluginHost, PluginLoadWarning, PluginSettings
from audit_sdk.plugin_registry import HOOK_FOR_KIND
from audit_sdk.report_model import Finding

from .plugin_packages import build_and_install_plugin

BUILTIN_ENTRY_POINTS = {
    "datasets",
    "baselines",
    "baseline_comparison",
    "group_fairness",
    "popularity_bias",
    "reporters",
}


def _host(**settings: object) -> PluginHost:
    host = PluginHost(PluginSettings(**settings))  # type: ignore[arg-type]
    host.load_entry_points()
    return host


def test_every_hook_is_documented_and_has_a_registration_kind() -> None:
    hooks = {
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("audit_sdk_")
    }
    assert hooks == set(HOOK_FOR_KIND.values())
    for name in hooks:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert "Fires" in doc and ":param register:" in doc and "Since" in doc, name


def test_builtins_load_through_the_entry_point_group() -> None:
    host = _host()
    records = {r.entry_point: r for r in host.records()}
    assert BUILTIN_ENTRY_POINTS <= set(records)
    for name in BUILTIN_ENTRY_POINTS:
        assert records[name].status == "loaded", records[name]
        assert records[name].distribution == "audit-sdk"
    assert {"group_fairness", "popularity_bias", "baseline_comparison"} <= set(
        host.registry.names("detector")
    )
    assert {"popularity", "item_knn", "random"} <= set(host.registry.names("adapter"))
    assert {"json", "html", "junit", "markdown"} <= set(host.registry.names("reporter"))
    assert {"synthetic", "tabular", "hetrec_lastfm_2k"} <= set(
        host.registry.names("dataset_loader")
    )
    reg = host.get("detector", "group_fairness")
    assert reg.distribution == "audit-sdk" and reg.version


class _Dummy(Detector):
    name = "group_fairness"

    def detect(self, context: object) -> list[Finding]:
        return []


class _DuplicatePlugin:
    @hookimpl
    def audit_sdk_register_detectors(self, register: object) -> None:
        register(_Dummy)  # type: ignore[operator]


def test_duplicate_names_are_an_error_naming_both_providers() -> None:
    host = _host()
    with pytest.raises(DuplicatePluginError) as info:
        host.register_plugin(_DuplicatePlugin(), name="my-dupe", distribution="dupe-dist")
    message = str(info.value)
    assert "'group_fairness'" in message
    assert "plugin 'group_fairness' from audit-sdk" in message
    assert "plugin 'my-dupe' from dupe-dist" in message
    assert "block" in message.lower()


class _Misspelled:
    @hookimpl
    def audit_sdk_register_detectorz(self, register: object) -> None:  # typo on purpose
        pass


def test_a_misspelled_hook_is_an_error_not_silence() -> None:
    host = _host()
    with pytest.warns(PluginLoadWarning, match="audit_sdk_register_detectorz"):
        host.register_plugin(_Misspelled(), name="typo")
    assert {r.entry_point: r.status for r in host.records()}["typo"] == "failed"
    strict = _host(strict=True)
    with pytest.raises(PluginLoadError, match="strict mode"):
        strict.register_plugin(_Misspelled(), name="typo")


class _NotADetector:
    @hookimpl
    def audit_sdk_register_detectors(self, register: object) -> None:
        register(dict)  # type: ignore[operator]


def test_registering_the_wrong_class_names_the_plugin() -> None:
    host = _host()
    with pytest.warns(PluginLoadWarning, match="plugin 'wrong'.*not a subclass"):
        host.register_plugin(_NotADetector(), name="wrong")


def test_unknown_names_suggest_the_closest() -> None:
    host = _host()
    with pytest.raises(UnknownPluginError, match="Did you mean 'group_fairness'"):
        host.get("detector", "group_fairnes")


def test_block_list_keeps_a_plugin_from_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    sys.modules.pop("audit_sdk.plugins.detectors.popularity_bias", None)
    host = _host(block=frozenset({"popularity_bias"}))
    records = {r.entry_point: r for r in host.records()}
    assert records["popularity_bias"].status == "blocked"
    assert "popularity_bias" not in host.registry.names("detector")
    assert "audit_sdk.plugins.detectors.popularity_bias" not in sys.modules
    importlib.import_module("audit_sdk.plugins.detectors.popularity_bias")


def test_block_list_can_name_a_single_component() -> None:
    host = _host(block=frozenset({"item_knn"}))
    assert "item_knn" not in host.registry.names("adapter")
    assert "popularity" in host.registry.names("adapter")


def test_environment_variables_choose_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_SDK_BLOCK_PLUGINS", "group_fairness, reporters")
    monkeypatch.setenv("AUDIT_SDK_STRICT_PLUGINS", "1")
    settings = PluginSettings.resolve(block=["baselines"])
    assert settings.block == {"group_fairness", "reporters", "baselines"}
    assert settings.strict is True
    monkeypatch.setenv("AUDIT_SDK_PLUGINS", "datasets")
    assert PluginSettings.resolve().allow == {"datasets"}
    host = PluginHost(PluginSettings.resolve())
    host.load_entry_points()
    loaded = {r.entry_point for r in host.records() if r.status == "loaded"}
    assert loaded == {"datasets"}


@pytest.fixture(scope="module")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_and_install_plugin(tmp_path_factory.mktemp("example-plugin"))


@pytest.fixture
def with_example_plugin(example_site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(example_site))
    importlib.invalidate_caches()
    return example_site


def test_a_separately_installed_plugin_is_discovered(with_example_plugin: Path) -> None:
    host = _host(autoload=True)
    records = {r.entry_point: r for r in host.records()}
    assert records["example"].status == "loaded"
    assert records["example"].distribution == "audit-sdk-example-plugin"
    assert records["example"].version == "1.2.3"
    reg = host.get("detector", "example_hit_rate")
    assert reg.distribution == "audit-sdk-example-plugin"
    assert host.hooks_of("example") == ["audit_sdk_register_detectors"]


def test_autoload_off_skips_third_party_but_allow_list_loads_it(
    with_example_plugin: Path,
) -> None:
    host = _host(autoload=False)
    assert "example" not in {r.entry_point for r in host.records() if r.status == "loaded"}
    assert "group_fairness" in host.registry.names("detector")
    host = _host(autoload=False, allow=frozenset({"example", "datasets"}))
    loaded = {r.entry_point for r in host.records() if r.status == "loaded"}
    assert loaded == {"example", "datasets"}


def test_a_plugin_that_fails_to_import_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    dist = site / "broken_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[audit_sdk]\nbroken = broken_plugin_module\n")
    (site / "broken_plugin_module.py").write_text("import not_a_real_module_xyz\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    with pytest.warns(PluginLoadWarning, match=r"'broken' \(from broken-plugin 0.1\).*not_a_real"):
        host = _host(autoload=True)
    assert "group_fairness" in host.registry.names("detector")
    with pytest.raises(PluginLoadError, match="broken"):
        _host(autoload=True, strict=True)


class _Slow(Detector):
    name = "slow_detector"

    def detect(self, context: object) -> list[Finding]:
        time.sleep(30)
        return []


def test_time_limit_turns_a_hung_plugin_into_a_record() -> None:
    from audit_sdk.plugin_calls import call_isolated

    start = time.perf_counter()
    record = call_isolated(
        lambda: _Slow().detect(None), phase="detect", plugin="slow", timeout_s=0.3
    )
    assert time.perf_counter() - start < 5
    assert not record.ok
    assert "time limit of 0.3 s" in record.describe_error()
    ok = call_isolated(lambda: 42, phase="detect", plugin="fast", timeout_s=5)
    assert ok.ok and ok.result == 42


def test_plugins_command_lists_name_version_and_distribution(with_example_plugin: Path) -> None:
    import json

    from typer.testing import CliRunner

    from audit_sdk.cli import app

    env = {"AUDIT_SDK_DISABLE_PLUGIN_AUTOLOAD": "0", "COLUMNS": "250"}
    result = CliRunner().invoke(app, ["plugins", "--json"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = {(c["kind"], c["name"]): c for c in data["components"]}
    example = rows[("detector", "example_hit_rate")]
    assert (example["version"], example["distribution"]) == ("1.2.3", "audit-sdk-example-plugin")
    assert rows[("detector", "group_fairness")]["distribution"] == "audit-sdk"
    table = CliRunner().invoke(app, ["plugins"], env=env)
    assert "example_hit_rate" in table.output and "audit-sdk-example-plugin" in table.output


def test_separately_installed_plugin_runs_in_an_audit_and_a_raise_is_an_error_finding(
    with_example_plugin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUDIT_SDK_DISABLE_PLUGIN_AUTOLOAD")
    from audit_sdk.config import parse_config
    from audit_sdk.runner import AuditRunner

    cfg = parse_config(
        {
            "dataset": {"params": {"n_users": 300, "n_artists": 60}},
            "baselines": ["popularity"],
            "detectors": [
                {"name": "example_hit_rate"},
                {"name": "example_broken"},
                {"name": "group_fairness"},
            ],
            "plugins": {"autoload": True},
            "stats": {"bootstrap_resamples": 100},
            "outputs": {"formats": ["json"]},
        }
    )
    report = AuditRunner(cfg, quiet=True, out_dir=tmp_path).run().report
    status = {f.detector: f.status for f in report.findings}
    assert status["example_hit_rate"] == "pass"
    assert status["example_broken"] == "error"
    assert status["group_fairness"] != "error"
    plugins = {p.entry_point: p for p in report.provenance.plugins}
    assert plugins["example"].distribution == "audit-sdk-example-plugin"


def test_config_block_list_removes_a_plugin(tmp_path: Path) -> None:
    from audit_sdk.config import parse_config
    from audit_sdk.runner import AuditRunner

    cfg = parse_config(
        {"plugins": {"block": ["group_fairness"]}, "detectors": [{"name": "group_fairness"}]}
    )
    with pytest.raises(UnknownPluginError, match="no detector named 'group_fairness'"):
        AuditRunner(cfg, quiet=True, out_dir=tmp_path).plan()


def test_a_detector_past_its_time_limit_becomes_an_error_finding(tmp_path: Path) -> None:
    from audit_sdk.config import parse_config
    from audit_sdk.runner import AuditRunner
    from audit_sdk.testing import inline_plugin, make_host

    class Sleepy(Detector):
        name = "sleepy"

        def detect(self, context: object) -> list[Finding]:
            time.sleep(20)
            return []

    host = make_host()
    cfg = parse_config(
        {
            "dataset": {"params": {"n_users": 300, "n_artists": 60}},
            "baselines": [],
            "detectors": [{"name": "sleepy", "timeout_s": 0.5}, {"name": "group_fairness"}],
            "stats": {"bootstrap_resamples": 100},
            "outputs": {"formats": ["json"]},
        }
    )
    with inline_plugin(host, Sleepy):
        start = time.perf_counter()
        report = AuditRunner(cfg, host=host, quiet=True, out_dir=tmp_path).run().report
    assert time.perf_counter() - start < 15
    (sleepy,) = [f for f in report.findings if f.detector == "sleepy"]
    assert sleepy.status == "error"
    assert "time limit of 0.5 s" in sleepy.explanation
    assert any(f.detector == "group_fairness" and f.status != "error" for f in report.findings)
