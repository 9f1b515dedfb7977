"""The plugin authors' test kit: every built-in detector passes its own conformance check."""

from __future__ import annotations

import pytest

from audit_sdk.interfaces import AuditContext, Detector
from audit_sdk.report_model import Finding
from audit_sdk.testing import check_detector, inline_plugin, make_host


@pytest.mark.parametrize("name", ["baseline_comparison", "group_fairness", "popularity_bias"])
def test_builtin_detectors_pass_the_conformance_check(
    name: str, audit_context: AuditContext
) -> None:
    host = make_host()
    detector = host.get("detector", name).cls()
    findings = check_detector(detector, audit_context)
    assert findings


class _Sloppy(Detector):
    name = "sloppy"

    def detect(self, context: AuditContext) -> list[Finding]:
        return [
            Finding(
                detector="someone_else", metric="m", estimate=0.5, status="pass", explanation="x"
            ),
            Finding(
                detector="sloppy",
                metric="m2",
                estimate=2.0,
                ci_low=0.0,
                ci_high=1.0,
                n=3,
                status="pass",
                explanation="y",
            ),
        ]


def test_conformance_check_names_each_problem(audit_context: AuditContext) -> None:
    with pytest.raises(AssertionError) as info:
        check_detector(_Sloppy(), audit_context)
    message = str(info.value)
    assert "detector is 'someone_else'" in message
    assert "an estimate without a CI" in message
    assert "estimate 2.0 outside [0.0, 1.0]" in message


def test_inline_plugin_registers_and_unregisters() -> None:
    host = make_host()
    with inline_plugin(host, _Sloppy):
        assert "sloppy" in host.registry.names("detector")
    assert "sloppy" not in host.registry.names("detector")
    with pytest.raises(TypeError), inline_plugin(host, dict):
        pass


def test_profile_fidelity_passes_the_conformance_check() -> None:
    from audit_sdk.testing import make_context

    context = make_context(n_users=300, profiles={"enabled": True, "cache": None, "max_users": 120})
    assert context.subject.profiles is not None
    assert set(context.subject.profiles["model"]) == {"template_writer"}
    detector = make_host().get("detector", "profile_fidelity").cls()
    findings = check_detector(detector, context)
    by_model = [f for f in findings if f.group_by == "model"]
    assert {f.metric for f in by_model} == {"artist_recall", "genre_recall", "hallucination_rate"}
    genre = next(f for f in by_model if f.metric == "genre_recall")
    assert genre.estimate is not None and genre.estimate > 0.5  # the template names genres
