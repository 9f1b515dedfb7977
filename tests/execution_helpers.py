"""Small audits for the execution backends, and a profile writer whose worker dies once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from audit_sdk.adapters.template_profile_writer import TemplateProfileWriter
from pydantic import Field

from audit_sdk.config import AuditConfig, parse_config
from audit_sdk.interfaces import GenerationParams
from audit_sdk.interfaces._params import PluginParams
from audit_sdk.report_model import Report


def small_audit(tmp: Path, name: str, execution: dict[str, Any], **sections: Any) -> AuditConfig:
    """A synthetic world of 60 users: subject and baseline, profiles by the template writer
    (two windows, batches of 6 prompts: about 20 shards of users), the default detectors with a small bootstrap."""
    data: dict[str, Any] = {
        "title": "execution backends",
        "seed": 5,
        "dataset": {"loader": "synthetic", "params": {"n_users": 60, "n_artists": 40, "seed": 2}},
        "subject": {"adapter": "popularity"},
        "baselines": ["popularity"],
        "profiles": {"enabled": True, "batch_size": 6, "cache": str(tmp / f"{name}.sqlite")},
        "sampling": {"windows": [90, 365]},
        "stats": {"bootstrap_resamples": 100},
        "execution": execution,
        "outputs": {"dir": str(tmp / name), "formats": ["json"]},
    }
    data.update(sections)
    return parse_config(data)


def findings_of(report: Report) -> list[tuple[Any, ...]]:
    """What must not depend on the backend: every finding (estimate, interval, status, its
    groups' estimates, explanation, details), all but its wall time."""
    return [
        tuple(sorted(f.model_dump(mode="json", exclude={"duration_s"}).items(), key=str))
        for f in report.findings
    ]


class FragileParams(PluginParams):
    marker: str = Field(description="created by the first worker to die; then no one dies")


class FragileWriter(TemplateProfileWriter):
    """The template writer, except that the first worker process to write a batch creates
    ``marker`` and dies on the spot (mid-shard, without an answer)."""

    name = "fragile_writer"
    Params = FragileParams

    def generate(self, prompts: Any, *, params: GenerationParams) -> list[str]:
        marker = Path(self.params.marker)  # type: ignore[attr-defined]
        if os.environ.get("AUDIT_SDK_DRIVER_PID") != str(os.getpid()):
            try:
                marker.touch(exist_ok=False)
            except FileExistsError:
                pass
            else:
                os._exit(3)
        return super().generate(prompts, params=params)
