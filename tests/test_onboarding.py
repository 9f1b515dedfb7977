"""The two onboarding shapes, each audited from one config file with no preprocessing.

The log-only audit builds its context the way the data stage will once it reads
``logged_dataset()`` for a config without a ``dataset:`` section (the runner's split needs
interactions a log does not have); the detectors are the config's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from audit_sdk.adapters.logged_outputs_adapter import LoggedOutputsAdapter, LoggedOutputsParams

from audit_sdk.config import load_config
from audit_sdk.interfaces import AuditContext, SubjectOutputs
from audit_sdk.plugin_instances import validate_params
from audit_sdk.runner import AuditRunner
from audit_sdk.testing import make_host

from .onboarding_worlds import write_movielens_like, write_profile_log

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_logged_profiles_with_share_columns_and_a_user_table(tmp_path: Path) -> None:
    write_profile_log(tmp_path)
    config_path = tmp_path / "audit.yaml"
    shutil.copy(EXAMPLES / "logged_profiles.yaml", config_path)
    context, detectors = _context_from_log(config_path)
    findings = [f for d in detectors for f in d.detect(context)]
    causal = {f.label: f for f in findings if f.detector == "causal_effects"}
    assert set(causal) == {"ate:rating[gpt-x]", "ate:rating[llama-y]", "ate:rating:difference"}
    gpt, llama = causal["ate:rating[gpt-x]"], causal["ate:rating[llama-y]"]
    # the generator is a typed field; the metric keeps the name thresholds are written for
    assert (gpt.metric, gpt.generator) == ("ate:rating", "gpt-x")
    assert gpt.explanation.startswith("generator gpt-x: ")
    rows = {g.group: g for g in gpt.groups}
    assert rows["metal"].significant is True
    assert rows["metal"].ci_low < -1.0 < rows["metal"].ci_high  # type: ignore[operator]
    assert not any(g.significant for g in llama.groups if g.group == "metal")
    assert any(c.startswith("longterm_share:") for c in gpt.details["covariates"])
    assert "age" in gpt.details["covariates"]
    fidelity = {f.metric: f for f in findings if f.detector == "profile_fidelity"}
    (difference,) = fidelity["rating:difference"].groups
    assert difference.group == "llama-y - gpt-x"  # gpt-x rates heavy metal listeners lower
    assert difference.ci_low is not None and difference.ci_low > 0
    # the log's own columns arrived typed and named
    users = context.dataset.users.frame
    assert users["age"].dtype.kind in "iuf"
    assert 0 < users["longterm_share:metal"].max() <= 1  # percent scaled
    profiles = context.subject.profiles
    assert profiles["latency_ms"].dtype.kind == "f"
    assert "share_country:US" in profiles.columns


def _context_from_log(config_path: Path):  # type: ignore[no-untyped-def]
    """What the data stage does for a log-only audit: the dataset and profiles from the log."""
    config = load_config(config_path)
    host = make_host()
    params = validate_params(
        host.get("adapter", "logged_outputs"),
        config.subject.params,
        where="subject.params",
        base_dir=config_path.parent,
    )
    assert isinstance(params, LoggedOutputsParams)
    adapter = LoggedOutputsAdapter(params)
    dataset = adapter.logged_dataset()
    subject = SubjectOutputs(
        name="logged",
        adapter="logged_outputs",
        fingerprint=adapter.fingerprint(),
        profiles=adapter.logged_profiles(),
    )
    context = AuditContext.from_tables(
        config=config,
        dataset=dataset,
        user_table=dataset.users.frame,
        group_columns=config.groups.attributes or [],
        subject=subject,
    )
    detectors = [
        host.get("detector", d.name).cls(host.get("detector", d.name).cls.Params(**d.params))
        for d in config.detectors
    ]
    return context, detectors


def test_headerless_tab_and_pipe_dataset_with_one_hot_genres(tmp_path: Path) -> None:
    write_movielens_like(tmp_path)
    config_path = tmp_path / "audit.yaml"
    shutil.copy(EXAMPLES / "movielens_like.yaml", config_path)
    config = load_config(config_path)
    runner = AuditRunner(config, quiet=True, out_dir=tmp_path / "out")
    report = runner.run().report
    context = runner.build_context()
    catalog = context.dataset.catalog.frame
    assert catalog.loc["1", "genres"] == ("action", "drama")  # one-hot flags, file order
    assert catalog.loc["2", "title"] == "Caf\u00e9 2 (1995)"  # latin-1 decoded
    users = context.dataset.users.frame
    assert users["age"].dtype.kind in "iuf" and set(users["gender"]) == {"M", "F"}
    gaps = [
        f
        for f in report.findings
        if f.detector == "group_fairness" and f.group_by == "gender" and "ndcg" in f.metric
    ]
    assert gaps, [f.key for f in report.findings]
    rows = {g.group: g for g in gaps[0].groups}
    assert rows["F"].estimate is not None and rows["M"].estimate is not None
    assert rows["F"].estimate < rows["M"].estimate  # the planted gap
    assert gaps[0].status in {"warn", "fail"}
