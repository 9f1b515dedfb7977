"""The gdrt mitigator in an audit: it tunes the subject's TinyRec with Group DRO (and the SFT
and IFairLRS baselines on the same budget), the pipeline re-audits the tuned model under a
fingerprint of its own, and configurations GDRT cannot run on give an error finding with the
reason while the untouched model's audit completes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")

from audit_sdk.adapters.local_model_files import read_manifest
from audit_sdk.adapters.tinyrec import TinyRecSettings, train_tinyrec

from audit_sdk import testing
from audit_sdk.config import parse_config
from audit_sdk.data.context_bias_world import (
    ContextBiasWorldParams,
    generate_context_bias_world,
)
from audit_sdk.runner import AuditResult, AuditRunner
from audit_sdk.splitting import holdout_split

WORLD = {"seed": 1, "n_users": 60, "items_per_user": 14, "n_hits": 20, "niche_per_cluster": 8}
SETTINGS = TinyRecSettings(
    n_embd=16,
    n_layer=1,
    n_head=2,
    n_positions=128,
    bpe_vocab_size=300,
    epochs=1,
    learning_rate=3e-3,
    rec_batch_size=32,
    profile_batch_size=16,
    profile_share=0.0,
    min_item_users=2,
    max_history=16,
    dropout=0.0,
)
FAST = {"epochs": 1, "examples_per_user": 2, "batch_size": 32}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny TinyRec trained on the audit's own training split."""
    world = generate_context_bias_world(ContextBiasWorldParams(**WORLD))
    split = holdout_split(world, test_items=5, seed=0)
    out = tmp_path_factory.mktemp("gdrt") / "tinyrec"
    train_tinyrec(split.train, out_dir=out, holdout=False, settings=SETTINGS, profile_windows=None)
    return out


def _audit(tmp_path: Path, subject: dict[str, Any], params: dict[str, Any]) -> AuditResult:
    config = {
        "dataset": {"loader": "context_bias", "params": WORLD},
        "subject": subject,
        "detectors": [{"name": "baseline_comparison"}],
        "mitigators": [{"name": "gdrt", "params": {**FAST, **params}}],
        "stats": {"bootstrap_resamples": 100},
        "outputs": {"formats": ["json"]},
    }
    host = testing.make_host()
    return AuditRunner(parse_config(config), host=host, quiet=True, out_dir=tmp_path).run()


@pytest.mark.slow
def test_gdrt_tunes_a_new_model_that_the_pipeline_audits_again(
    tmp_path: Path, model_dir: Path
) -> None:
    subject = {"adapter": "tinyrec", "params": {"model_dir": str(model_dir)}}
    params = {"groups": 2, "update": "online", "output_dir": str(tmp_path / "tuned")}
    result = _audit(tmp_path / "report", subject, params)
    before = result.context
    assert before is not None
    errors = [(f.detector, f.explanation) for f in result.report.findings if f.status == "error"]
    assert not errors, errors
    (after,) = result.mitigated
    assert after.subject.name == "tinyrec+gdrt"
    assert after.subject.fingerprint != before.subject.fingerprint
    assert after.subject.recommendations is not None
    (info,) = [f.mitigation for f in result.report.findings if f.mitigation is not None][:1]
    assert info is not None and info.changed == ["adapter"]
    details = info.details
    # groups: two, non-empty, ordered by mean relevance
    groups = details["groups"]
    assert [g["group"] for g in groups] == [0, 1] and all(g["size"] > 0 for g in groups)
    assert groups[0]["mean_r"] < groups[1]["mean_r"]
    # every arm measured, paired against before and GDRT against each baseline
    assert set(details["comparison"]["arms"]) == {"before", "gdrt", "sft", "ifairlrs"}
    paired = details["comparison"]["paired"]
    assert {"gdrt - before", "gdrt - sft", "gdrt - ifairlrs"} <= set(paired)
    for metric in ("ndcg@10", "recall@10", "aux_share", "mgu@10", "dgu@10"):
        ci = paired["gdrt - sft"][metric]
        assert ci["low"] <= ci["mean"] <= ci["high"], metric
    # the group-weight curve of the tuning run, one row per step, each a distribution
    curve = details["curves"]["gdrt"]
    assert len(curve["weights"]) >= 1
    assert all(abs(sum(w) - 1.0) < 1e-6 for w in curve["weights"])
    # the report's mitigation section: the arms and paired tables, weight and loss curves
    titles = [t.title for t in info.tables]
    assert any("every arm" in t for t in titles) and any("paired" in t for t in titles)
    arms = next(t for t in info.tables if "every arm" in t.title)
    assert [row[0] for row in arms.rows] == list(details["comparison"]["arms"])
    assert {c.title for c in info.curves} >= {
        "gdrt: group weight q_g per training step",
        "gdrt: group loss L_g per training step",
    }
    from audit_sdk.reports.html_reporter import render_html

    assert "Mitigation: gdrt" in render_html(result.report)
    # the tuned model is a model directory of its own that records how it was made
    tuned = Path(details["model_dir"])
    assert tuned != model_dir and (tuned / "model.safetensors").is_file()
    manifest = read_manifest(tuned)
    assert manifest is not None
    (record,) = manifest.training["fine_tuning"]
    assert record["objective"]["name"] == "group_dro_online"
    assert isinstance(record["base_fingerprint"], str) and record["base_fingerprint"]
    saved = json.loads((tuned.parent / "comparison.json").read_text())
    assert saved["groups"] == groups
    # the detectors ran on the tuned subject too
    assert any(f.subject == "tinyrec+gdrt" and f.status != "error" for f in result.report.findings)


@pytest.mark.parametrize(
    ("subject", "params", "reason"),
    [
        ("tinyrec", {"groups": 1}, "at least two groups"),
        # one-token answers scored without the history take one value per item: ties
        ("tinyrec", {"groups": 100}, "have no examples"),
        ("item_knn", {}, "offers no scoring and training"),
    ],
)
def test_unrunnable_configurations_give_an_error_finding_and_the_audit_completes(
    tmp_path: Path, model_dir: Path, subject: str, params: dict[str, Any], reason: str
) -> None:
    spec: dict[str, Any] = {"adapter": subject}
    if subject == "tinyrec":
        spec["params"] = {"model_dir": str(model_dir)}
    result = _audit(tmp_path, spec, {**params, "output_dir": str(tmp_path / "tuned")})
    gdrt = [f for f in result.report.findings if f.detector == "gdrt"]
    assert len(gdrt) == 1 and gdrt[0].status == "error"
    assert reason in gdrt[0].explanation
    untouched = [f for f in result.report.findings if f.detector == "baseline_comparison"]
    assert untouched and all(f.status != "error" for f in untouched)


def test_mitigate_gdrt_command_tunes_a_model_directory(tmp_path: Path, model_dir: Path) -> None:
    from typer.testing import CliRunner

    from audit_sdk.cli import app

    config = tmp_path / "audit.yaml"
    config.write_text("dataset:\n  loader: context_bias\n  params: " + json.dumps(WORLD) + "\n")
    runner = CliRunner()
    args = ["mitigate-gdrt", "--model-dir", str(model_dir), "--config", str(config)]
    params = json.dumps({**FAST, "groups": 2, "baselines": ["sft"]})
    done = runner.invoke(
        app, [*args, "--params", params, "--out", str(tmp_path / "tuned")], env={"COLUMNS": "250"}
    )
    assert done.exit_code == 0, done.output
    assert "groups: 0: n=" in done.output and "gdrt - sft" in done.output
    assert "Saved the GDRT model to" in done.output
    bad = runner.invoke(app, [*args, "--params", json.dumps({"groups": 1})])
    assert bad.exit_code == 2, bad.output
    assert "at least two groups" in bad.output and "Traceback" not in bad.output


def test_lora_tuning_changes_only_the_adapted_weights_and_saves_a_plain_model(
    tmp_path: Path, model_dir: Path
) -> None:
    pytest.importorskip("peft")
    import torch
    from audit_sdk.adapters.tinyrec import CrossEntropyObjective
    from audit_sdk.adapters.tinyrec.fine_tuning import LoraSettings, fine_tune, load_causal_lm
    from audit_sdk.adapters.tinyrec.gdrt_data import build_examples, item_token_histories

    world = generate_context_bias_world(ContextBiasWorldParams(**WORLD))
    base, tokenizer, manifest = load_causal_lm(model_dir)
    prefix, histories = item_token_histories(world.interactions, manifest, tokenizer)
    examples = build_examples(histories, prefix, per_user=2)
    result = fine_tune(
        model_dir,
        examples,
        None,
        CrossEntropyObjective(),
        out_dir=tmp_path / "lora",
        epochs=1,
        learning_rate=1e-2,
        lora=LoraSettings(r=2, alpha=4, target_modules=("c_attn",)),
    )
    tuned, _, tuned_manifest = load_causal_lm(result.model_dir)
    assert type(tuned) is type(base) and result.steps >= 1
    before, after = base.state_dict(), tuned.state_dict()
    assert set(before) == set(after)  # merged: no LoRA parameters left
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all("c_attn" in name for name in changed)
    assert tuned_manifest is not None
    assert tuned_manifest.training["fine_tuning"][-1]["lora"] == {"r": 2, "alpha": 4}
