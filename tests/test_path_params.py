"""Path parameters are found by their type, for every plugin kind, and resolve against the
config file's folder (not by guessing from a key's name)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
import yaml
from pydantic import Field

from audit_sdk import PathParam, PluginParams, testing
from audit_sdk.config import load_config
from audit_sdk.interfaces import AuditContext, Detector
from audit_sdk.pipeline import plan_audit
from audit_sdk.plugin_instances import path_fields
from audit_sdk.report_model import Finding


class _Params(PluginParams):
    lexicon: Path
    extra: Annotated[str, PathParam()] | None = None
    many: list[Path] = Field(default_factory=list)
    label: str = "not/a/path"  # a string that looks like a path but is not one


class _ReadsFiles(Detector[_Params]):
    name = "reads_files"
    Params = _Params

    def detect(self, context: AuditContext) -> list[Finding]:  # pragma: no cover
        return []


def test_path_fields_are_found_by_type() -> None:
    assert path_fields(_Params) == {"lexicon": False, "extra": False, "many": True}


def test_relative_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "audits"
    folder.mkdir()
    monkeypatch.setenv("LEXICONS", "/srv/lexicons")
    config: dict[str, Any] = {
        "dataset": {"params": {"n_users": 50}},
        "baselines": [],
        "detectors": [
            {
                "name": "reads_files",
                "params": {
                    "lexicon": "words/genres.txt",
                    "extra": "$LEXICONS/moods.txt",
                    "many": ["a.txt", "/abs/b.txt"],
                },
            }
        ],
        "outputs": {"formats": []},
    }
    (folder / "audit.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    cfg = load_config(folder / "audit.yaml")
    host = testing.make_host()
    with testing.inline_plugin(host, _ReadsFiles):
        plan = plan_audit(cfg, host)
    (call,) = plan.detectors
    params = call.plugin.params
    assert isinstance(params, _Params)
    assert params.lexicon == (folder / "words" / "genres.txt").resolve()
    assert params.extra == "/srv/lexicons/moods.txt"
    assert params.many == [(folder / "a.txt").resolve(), Path("/abs/b.txt")]
    assert params.label == "not/a/path"
