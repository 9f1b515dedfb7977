"""GDRT end to end for one model directory: groups, tuned arms, before/after comparison.

:func:`run_gdrt` is what the ``gdrt`` mitigator and the ``audit-sdk mitigate-gdrt`` command
share:

1. answer-only examples from the training histories (:mod:`audit_sdk.adapters.tinyrec.gdrt_data`);
2. relevance ``r_t = log P(y_t | x_aux, y_<t)`` by the model before tuning, with the history
   span removed, and ``K`` groups (quantile or 1-D K-means), sizes and mean ``r`` reported;
3. the tuned arms, every one from the same model with the same batches, steps and learning
   rate (the same budget): ``gdrt`` (Group DRO, online EG or the KL closed form, optional CE
   mix), and as baselines ``sft`` (plain cross-entropy) and ``ifairlrs`` (Jiang et al. WWW
   2024 popularity reweighting), each a new model directory with its own fingerprint;
4. every model measured on the held-out items (:mod:`.gdrt_evaluation`), with paired CIs.

Unrunnable configurations raise :class:`GDRTUnavailable` naming the reason (the mitigator
turns it into an ``error`` finding; the untouched model's audit is unaffected).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from audit_sdk.atomic_io import atomic_write_text
from audit_sdk.data.tables import Dataset
from audit_sdk.interfaces import PluginParams
from audit_sdk.interfaces._params import PathParam

__all__ = ["GDRTOutcome", "GDRTParams", "GDRTUnavailable", "run_gdrt"]


Baseline = Literal["sft", "ifairlrs"]
BASELINES: tuple[Baseline, ...] = ("sft", "ifairlrs")


class GDRTUnavailable(ValueError):
    """GDRT cannot run on this model or data; the message says why and what to change."""


class GDRTParams(PluginParams):
    update: Literal["kl", "online"] = Field(
        "online",
        description="Group DRO rule: online (exponentiated gradient, Sagawa et al. 2020) or "
        "kl (the closed form tau log-sum-exp)",
    )
    eta: float = Field(0.01, gt=0, description="online EG step size (Sagawa et al. 2020)")
    tau: float = Field(1.0, gt=0, description="KL temperature of the closed form")
    ce_mix: float = Field(0.0, ge=0, le=1, description="share of plain cross-entropy mixed in")
    groups: int = Field(4, ge=1, description="K, the number of relevance groups")
    group_method: Literal["quantile", "kmeans"] = "quantile"
    granularity: Literal["token", "sample"] = "token"
    answer_items: int = Field(1, ge=1, description="items per answer (targets per example)")
    examples_per_user: int = Field(4, ge=1, description="examples cut from each history")
    epochs: int = Field(2, ge=1, description="passes over the examples (every arm alike)")
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(3e-3, gt=0)
    lora: bool = Field(False, description="tune LoRA adapters (peft) instead of all weights")
    lora_rank: int = Field(8, ge=1)
    baselines: list[Baseline] = Field(
        default_factory=lambda: list(BASELINES),
        description="baselines tuned on the same budget: plain SFT, IFairLRS reweighting",
    )
    popularity_groups: int = Field(5, ge=2, description="item-popularity groups of MGU/DGU")
    output_dir: Annotated[str, PathParam()] | None = Field(
        None, description="where the tuned models go (default: the audit-sdk cache)"
    )
    seed: int | None = Field(None, description="tuning seed (default: the audit's seed)")


@dataclass
class GDRTOutcome:
    model_dir: Path
    arms: dict[str, Path]
    groups: list[dict[str, float]]
    comparison: dict[str, Any]
    curves: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def _objective(params: GDRTParams, n_groups: int, sizes: Sequence[int]) -> Any:
    from audit_sdk.adapters.tinyrec.group_dro import KLGroupDRO, OnlineGroupDRO

    if params.update == "online":
        return OnlineGroupDRO(n_groups=n_groups, eta=params.eta, ce_mix=params.ce_mix)
    return KLGroupDRO(
        n_groups=n_groups, tau=params.tau, prior=[float(s) for s in sizes], ce_mix=params.ce_mix
    )


def _thin(curve: dict[str, list[Any]], max_points: int = 200) -> dict[str, list[Any]]:
    n = len(curve["weights"])
    keep = np.unique(np.linspace(0, max(n - 1, 0), min(n, max_points)).astype(int)).tolist()
    return {key: [values[i] for i in keep] for key, values in curve.items()} if n else curve


def _key(base_fingerprint: str, train: Dataset, params: GDRTParams, seed: int) -> str:
    payload = json.dumps(
        {
            "base": base_fingerprint,
            "train": train.fingerprint(),
            "params": params.model_dump(mode="json", exclude={"output_dir"}),
            "seed": seed,
            "recipe": 1,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def run_gdrt(
    model_dir: str | Path,
    *,
    train: Dataset,
    test: Dataset,
    users: Sequence[str],
    params: GDRTParams,
    seed: int,
    k: int = 10,
    base_fingerprint: str | None = None,
    user_groups: pd.DataFrame | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> GDRTOutcome:
    """Tune the model in ``model_dir`` with GDRT (and the baselines) and compare them."""
    from audit_sdk.adapters.local_model_files import directory_fingerprint
    from audit_sdk.adapters.tinyrec import CrossEntropyObjective
    from audit_sdk.adapters.tinyrec.fine_tuning import LoraSettings, fine_tune, load_causal_lm
    from audit_sdk.adapters.tinyrec.gdrt_data import (
        assign_groups,
        build_examples,
        item_token_histories,
        relevance_scores,
    )
    from audit_sdk.adapters.tinyrec.group_dro import GroupWeightedCrossEntropy, ifairlrs_weights

    from audit_sdk.cache_paths import cache_dir

    from .gdrt_evaluation import compare_arms, evaluate_arm, history_group_counts

    started = time.perf_counter()
    timings: dict[str, float] = {}
    source = Path(model_dir)
    if params.groups < 2:
        raise GDRTUnavailable(
            f"groups = {params.groups}: Group DRO needs at least two groups to reweight "
            "(set params.groups to 2 or more; the default is 4)"
        )
    model, tokenizer, manifest = load_causal_lm(source)
    if manifest is None:
        raise GDRTUnavailable(
            f"{source} has no item map (audit_sdk_tinyrec.json), so the model cannot rank "
            "catalog items and GDRT has no held-out recommendations to measure; tune a "
            "TinyRec-format model (audit-sdk train-tinyrec)"
        )
    base_fingerprint = base_fingerprint or directory_fingerprint(
        source, sorted(p.name for p in source.iterdir() if p.is_file())
    )
    pad_id = int(tokenizer.pad_token_id or 0)
    prefix, histories = item_token_histories(train.interactions, manifest, tokenizer)
    examples = build_examples(
        histories,
        prefix,
        answer_items=params.answer_items,
        per_user=params.examples_per_user,
        max_history=manifest.max_history,
        seed=seed,
    )
    if not examples:
        raise GDRTUnavailable(
            "no training user has enough items in the model's item vocabulary for an example "
            f"(at least {3 + params.answer_items}); GDRT has nothing to train on"
        )
    progress(f"scoring relevance of {len(examples)} examples without their history")
    scores = relevance_scores(model, examples, granularity=params.granularity, pad_id=pad_id)
    try:
        assignment = assign_groups(scores, k=params.groups, method=params.group_method, seed=seed)
    except ValueError as exc:
        raise GDRTUnavailable(str(exc)) from None
    timings["relevance_s"] = time.perf_counter() - started

    root = Path(params.output_dir) if params.output_dir else cache_dir() / "gdrt"
    root = root / _key(base_fingerprint, train, params, seed)
    budget = {
        "epochs": params.epochs,
        "batch_size": params.batch_size,
        "learning_rate": params.learning_rate,
        "seed": seed,
        "lora": LoraSettings(r=params.lora_rank, alpha=2 * params.lora_rank)
        if params.lora
        else None,
        "base_fingerprint": base_fingerprint,
    }
    objectives: dict[str, Any] = {"gdrt": _objective(params, assignment.n_groups, assignment.sizes)}
    groups_by_arm: dict[str, list[np.ndarray] | None] = {"gdrt": assignment.groups}
    item_groups, history_counts = history_group_counts(
        train, users, n_groups=params.popularity_groups
    )
    if "sft" in params.baselines:
        objectives["sft"] = CrossEntropyObjective()
        groups_by_arm["sft"] = None
    if "ifairlrs" in params.baselines:
        group_of_token = {
            t: int(item_groups.get(item, params.popularity_groups - 1))
            for t, item in manifest.item_tokens.items()
        }
        pop_targets = [np.array([group_of_token.get(t, 0) for t in e.answer]) for e in examples]
        pop_history = np.array(
            [group_of_token.get(t, 0) for e in examples for t in e.history], dtype=np.int64
        )
        weights = ifairlrs_weights(
            pop_history, np.concatenate(pop_targets), params.popularity_groups
        )
        objectives["ifairlrs"] = GroupWeightedCrossEntropy(
            n_groups=params.popularity_groups, weights=tuple(weights)
        )
        groups_by_arm["ifairlrs"] = pop_targets
    arms: dict[str, Path] = {}
    curves: dict[str, Any] = {}
    for name, objective in objectives.items():
        out = root / name
        t0 = time.perf_counter()
        if not (out / "config.json").is_file():
            progress(f"tuning {name} ({objective.describe()['name']})")
            fine_tune(
                source,
                examples,
                groups_by_arm[name],
                objective,
                out_dir=out,
                overwrite=True,
                label=name,
                **budget,
            )
            if getattr(objective, "curve", None):
                curve = _thin(objective.curve_arrays())
                atomic_write_text(out.parent / f"{name}_curve.json", json.dumps(curve) + "\n")
        curve_file = out.parent / f"{name}_curve.json"
        if curve_file.is_file():
            curves[name] = json.loads(curve_file.read_text())
        arms[name] = out
        timings[f"tune_{name}_s"] = time.perf_counter() - t0

    progress("measuring before and after on the held-out items")
    t0 = time.perf_counter()
    evaluations = {
        name: evaluate_arm(
            name,
            path,
            train=train,
            test=test,
            users=users,
            k=k,
            item_groups=item_groups,
            n_item_groups=params.popularity_groups,
        )
        for name, path in {"before": source, **arms}.items()
    }
    pairs = [("gdrt", name) for name in ("sft", "ifairlrs") if name in objectives]
    comparison = compare_arms(
        evaluations,
        before="before",
        pairs=pairs,
        history_counts=history_counts,
        user_groups=user_groups,
        k=k,
        seed=seed,
    )
    timings["evaluate_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - started
    outcome = GDRTOutcome(
        model_dir=arms["gdrt"],
        arms=arms,
        groups=assignment.summary(),
        comparison=comparison,
        curves=curves,
        timings={key: round(v, 2) for key, v in timings.items()},
        details={
            "n_examples": len(examples),
            "group_edges": list(assignment.edges),
            "group_method": assignment.method,
            "granularity": params.granularity,
            "objective": objectives["gdrt"].describe(),
            "ifairlrs_weights": objectives["ifairlrs"].describe()["weights"]
            if "ifairlrs" in objectives
            else None,
        },
    )
    atomic_write_text(root / "comparison.json", json.dumps(summary_of(outcome), indent=2) + "\n")
    return outcome


def summary_of(outcome: GDRTOutcome) -> dict[str, Any]:
    """What the report keeps of a GDRT run (JSON-ready)."""
    return {
        "model_dir": str(outcome.model_dir),
        "arms": {name: str(path) for name, path in outcome.arms.items()},
        "groups": outcome.groups,
        "comparison": outcome.comparison,
        "curves": outcome.curves,
        "timings": outcome.timings,
        **outcome.details,
    }
