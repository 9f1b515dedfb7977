"""Train TinyRec from scratch on CPU and measure it on held-out items.

TinyRec is a GPT-2-style causal LM (``transformers.GPT2Config``) with the tokenizer of
:mod:`.vocabulary`, trained on the two tasks of :mod:`.training_data` by the loop of
:mod:`.training_loop` with a pluggable objective (:mod:`.objectives`; next-token
cross-entropy by default). :func:`train_tinyrec` splits the dataset
(:func:`audit_sdk.splitting.holdout_split`), trains on the training split, ranks the held-out
items of every audited user and reports NDCG@10 and recall@10 (with bootstrap CIs) next to the
popularity and random baselines, and the paired difference to popularity
(:mod:`.evaluation`). It writes a standard transformers model directory (``config.json``,
``model.safetensors``, ``generation_config.json``, tokenizer files) plus
``audit_sdk_tinyrec.json`` (the item map, provenance and held-out metrics: the same bytes for
the same training) and ``audit_sdk_tinyrec_timing.json`` (wall-clock times of this run),
atomically: the directory appears complete or not at all.

Training runs a fixed number of steps (the size's epochs), on a fixed number of threads, with
seeded data order: for a seed the weights are byte-identical on any load (see
:mod:`.training_loop` for what "identical" assumes). A time budget applies only when asked.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from audit_sdk.atomic_io import atomic_write_text
from audit_sdk.data.tables import Dataset
from audit_sdk.errors import AdapterError, DataValidationError
from audit_sdk.recommendation_prompts import catalog_unit
from audit_sdk.user_histories import history_order_for, user_histories

from ..catalog_ranking import ItemRanker
from ..local_model_files import TINYREC_FORMAT_VERSION, TinyRecManifest
from .evaluation import evaluate_profiles, evaluate_recommendations, next_token_logits_fn
from .objectives import CrossEntropyObjective, TrainingObjective
from .settings import (
    DEFAULT_TRAINING_THREADS,
    SIZES,
    TRAINING_RECIPE,
    TinyRecSettings,
    TinyRecSize,
)
from .training_batches import epoch_batches, prepare_training_data
from .training_loop import (
    LearningRateSchedule,
    deterministic_training,
    run_training_loop,
    seed_from,
)

__all__ = ["TIMING_NAME", "TinyRecTrainingResult", "train_tinyrec"]

TIMING_NAME = "audit_sdk_tinyrec_timing.json"


@dataclass
class TinyRecTrainingResult:
    """What :func:`train_tinyrec` did and measured.

    ``metrics`` maps model name (``tinyrec``, ``popularity``, ``random``) to metric name
    (``ndcg@10``, ``recall@10``, ``hit@10``) to ``{"mean", "low", "high", "n"}`` (95% bootstrap
    CI over users); ``paired`` holds TinyRec minus popularity per metric, with its CI.
    Empty when trained without a held-out split.
    """

    model_dir: Path
    size: str
    seed: int
    train_seconds: float
    total_seconds: float
    steps: int
    epochs_completed: float
    stopped_by_time_budget: bool
    time_paced: bool
    n_parameters: int
    n_item_tokens: int
    vocab_size: int
    split_strategy: str | None
    history_order: str
    final_loss: float
    metrics: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    paired: dict[str, dict[str, float]] = field(default_factory=dict)
    profile_metrics: dict[str, float] = field(default_factory=dict)

    def summary_table(self) -> pd.DataFrame:
        """Models x metrics: mean with the CI, for printing."""
        rows = []
        for model, by_metric in self.metrics.items():
            row: dict[str, Any] = {"model": model}
            for metric, v in by_metric.items():
                row[metric] = f"{v['mean']:.4f} [{v['low']:.4f}, {v['high']:.4f}]"
            rows.append(row)
        return pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["model_dir"] = str(self.model_dir)
        return out


def _initialise_item_embeddings(
    model: Any, train: Dataset, token_of_item: dict[str, int], *, seed: int
) -> None:
    """Start the item tokens' (tied input/output) embeddings from collaborative factors.

    The factors are a truncated SVD of the binary training user x item matrix, item side
    ``V_k S_k^{1/2}`` (the factor model of Koren, Bell & Volinsky 2009, fit in closed form), rescaled
    to GPT-2's initial embedding scale. Text tokens keep GPT-2's random initialisation. Without
    this warm start a CPU-sized budget of epochs learns little beyond item popularity.
    """
    import torch
    from scipy import sparse
    from sklearn.utils.extmath import randomized_svd

    frame = train.interactions.frame[["user_id", "item_id"]].drop_duplicates()
    frame = frame.loc[frame["item_id"].isin(token_of_item)]
    if frame.empty:
        return
    items = sorted(token_of_item, key=token_of_item.__getitem__)
    users = pd.Index(frame["user_id"].unique())
    rows = users.get_indexer(frame["user_id"])
    cols = pd.Index(items).get_indexer(frame["item_id"])
    matrix = sparse.csr_matrix((np.ones(len(frame)), (rows, cols)), shape=(len(users), len(items)))
    width = model.config.n_embd
    k = min(width, min(matrix.shape) - 1)
    if k < 1:
        return
    _, singular, vt = randomized_svd(
        matrix, n_components=k, random_state=seed_from(seed, "svd") % (2**32)
    )
    factors = (vt.T * np.sqrt(singular)).astype(np.float64)
    factors *= model.config.initializer_range / max(float(factors.std()), 1e-12)
    embeddings = model.get_input_embeddings().weight
    with torch.no_grad():
        ids = torch.tensor([token_of_item[i] for i in items], dtype=torch.long)
        block = torch.zeros(len(items), width, dtype=embeddings.dtype)
        block[:, :k] = torch.from_numpy(factors).to(embeddings.dtype)
        embeddings[ids] = block


def _publish(tmp_dir: Path, out_dir: Path, *, overwrite: bool) -> None:
    """Move a finished model directory into place (atomic rename on one filesystem)."""
    if out_dir.exists():
        if not overwrite:
            raise AdapterError(
                f"{out_dir} already exists; choose a new directory or pass overwrite=True."
            )
        trash = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, trash)
        os.replace(tmp_dir, out_dir)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp_dir, out_dir)


def _new_model(cfg: TinyRecSettings, tokenizer: Any) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=cfg.n_positions,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        resid_pdrop=cfg.dropout,
        embd_pdrop=cfg.dropout,
        attn_pdrop=cfg.dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    return GPT2LMHeadModel(config)


def _save(
    model: Any,
    tokenizer: Any,
    manifest: TinyRecManifest,
    timing: dict[str, Any],
    *,
    out_dir: Path,
    overwrite: bool,
) -> None:
    from transformers import GenerationConfig

    from audit_sdk.transformers_support import quiet_transformers

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        with quiet_transformers():
            model.save_pretrained(tmp_dir)
        tokenizer.save_pretrained(tmp_dir)
        GenerationConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            do_sample=True,
            temperature=0.8,
            top_p=1.0,
            max_new_tokens=96,
        ).save_pretrained(tmp_dir)
        manifest.write(tmp_dir)
        atomic_write_text(tmp_dir / TIMING_NAME, json.dumps(timing, indent=2) + "\n")
        _publish(tmp_dir, out_dir, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise


def train_tinyrec(
    dataset: Dataset,
    *,
    out_dir: str | Path,
    size: TinyRecSize = "full",
    seed: int = 0,
    time_budget_s: float | None = None,
    holdout: bool = True,
    test_items: int = 5,
    split_strategy: Literal["auto", "time", "random"] = "auto",
    k: int = 10,
    threads: int | None = None,
    overwrite: bool = False,
    profile_windows: tuple[int, ...] | None = (30, 90, 180, 365),
    settings: TinyRecSettings | None = None,
    objective: TrainingObjective | None = None,
    progress: Any = None,
) -> TinyRecTrainingResult:
    """Train TinyRec on ``dataset`` and save it to ``out_dir``.

    :param size: ``"demo"`` (trains in about a minute on 2 cores) or ``"full"``.
    :param time_budget_s: ``None`` (default) trains every step of the size's schedule, so the
        weights depend only on the data, seed and settings. A number stops training after
        about that many seconds (evaluation and saving come after it); the manifest records
        that the model was time-limited, and if the clock set the pace (``time_paced``) the
        weights are not reproducible.
    :param holdout: split off ``test_items`` held-out items per user, train on the rest and
        report held-out metrics. ``False`` trains on all of ``dataset`` (the audit runner does
        this with its own training split, and measures the held-out items itself).
    :param threads: torch CPU threads during training (default
        :data:`~.settings.DEFAULT_TRAINING_THREADS`, whatever the machine); restored
        afterwards. Different thread counts may give different bits.
    :param settings: overrides the size's architecture and schedule (tests use tiny ones).
    :param objective: what each step minimises (default :class:`.CrossEntropyObjective`).
    :param progress: optional ``progress(message)`` callback.
    """
    import torch

    started = time.perf_counter()
    cfg = settings or SIZES[size]
    threads = threads or DEFAULT_TRAINING_THREADS
    objective = objective or CrossEntropyObjective()
    out_dir = Path(out_dir)
    say = progress or (lambda message: None)
    if out_dir.exists() and not overwrite:
        raise AdapterError(
            f"{out_dir} already exists; choose a new directory or pass overwrite=True."
        )

    split = None
    if holdout:
        from audit_sdk.splitting import holdout_split

        split = holdout_split(dataset, test_items=test_items, strategy=split_strategy, seed=seed)
        train = split.train
    else:
        train = dataset
    if train.interactions.frame.empty:
        raise DataValidationError("there are no training interactions.", source=dataset.name)

    order = history_order_for(train.interactions)
    unit = catalog_unit(train.catalog)
    histories = user_histories(train.interactions, order=order)
    users = sorted(histories)
    data = prepare_training_data(
        train,
        cfg,
        users=users,
        histories=histories,
        unit=unit,
        order=order,
        seed=seed,
        holdout=holdout,
        profile_windows=profile_windows,
        source=dataset.name,
        say=say,
    )
    tokenizer, item_map = data.tokenizer, data.item_map
    token_of_item = {item: token for token, item in item_map.items()}
    n_profile_per_epoch = min(len(data.profile_data), math.ceil(cfg.profile_share * len(users)))
    steps_per_epoch = math.ceil(len(data.rec_users) / cfg.rec_batch_size) + math.ceil(
        n_profile_per_epoch / cfg.profile_batch_size
    )
    schedule = LearningRateSchedule(cfg.learning_rate, max(1, steps_per_epoch * cfg.epochs))

    with deterministic_training(seed=seed_from(seed, "torch") % (2**63), threads=threads):
        model = _new_model(cfg, tokenizer)
        if cfg.item_init == "svd":
            _initialise_item_embeddings(model, train, token_of_item, seed=seed)
        n_parameters = sum(p.numel() for p in model.parameters())
        say(
            f"training TinyRec ({size}): {n_parameters:,} parameters, {len(item_map)} item "
            f"tokens, {len(users)} users, {len(data.profile_data)} profile examples, "
            f"{schedule.total_steps} steps"
        )
        loop = run_training_loop(
            model,
            epoch_batches(data, cfg, n_profile_per_epoch=n_profile_per_epoch, seed=seed),
            objective=objective,
            schedule=schedule,
            n_epochs=cfg.epochs,
            time_budget_s=time_budget_s,
            progress=say,
        )

        metrics: dict[str, dict[str, dict[str, float]]] = {}
        paired: dict[str, dict[str, float]] = {}
        profile_metrics: dict[str, float] = {}
        manifest = TinyRecManifest(
            item_tokens=item_map, unit=unit, history_order=order, max_history=cfg.max_history
        )
        eval_started = time.perf_counter()
        if split is not None:
            say("evaluating on held-out items")
            token_titles = {t: tokenizer.convert_ids_to_tokens(t) for t in item_map}
            metrics, paired = evaluate_recommendations(
                split,
                ItemRanker(manifest, token_titles),
                histories,
                next_token_logits_fn(model, tokenizer),
                k=k,
                seed=seed,
            )
            profile_metrics = evaluate_profiles(
                model,
                tokenizer,
                data.eval_examples,
                eos_id=tokenizer.eos_token_id,
                max_length=cfg.n_positions,
                n_generate=32,
            )
        profile_seconds = profile_metrics.pop("profile_generate_seconds", None)

    training_info = {
        "size": size,
        "seed": seed,
        "settings": asdict(cfg),
        "objective": objective.describe(),
        "training_recipe": TRAINING_RECIPE,
        "threads": threads,
        "deterministic": not loop.time_paced,
        "time_limited": time_budget_s is not None,
        "time_budget_s": time_budget_s,
        "time_paced": loop.time_paced,
        "stopped_by_time_budget": loop.stopped_by_time_budget,
        "steps": loop.steps,
        "planned_steps": schedule.total_steps,
        "epochs_completed": loop.epochs_completed,
        "final_loss": loop.final_loss,
        "n_parameters": n_parameters,
        "n_item_tokens": len(item_map),
        "n_item_candidates": data.n_candidates,
        "n_items_excluded": data.n_excluded,
        "n_profile_examples": len(data.profile_data),
        "n_profile_examples_too_long": data.n_profiles_too_long,
        "holdout": holdout,
        "split_strategy": split.strategy if split is not None else None,
        "test_items": test_items if holdout else None,
        "torch_version": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "format_version": TINYREC_FORMAT_VERSION,
    }
    manifest = TinyRecManifest(
        item_tokens=item_map,
        unit=unit,
        history_order=order,
        max_history=cfg.max_history,
        dataset={
            "name": dataset.name,
            "fingerprint": dataset.fingerprint(),
            "train_fingerprint": train.fingerprint(),
            "n_users": len(users),
            "n_items": len(train.catalog),
        },
        training=training_info,
        metrics={
            "k": k,
            "recommendation": metrics,
            "paired_vs_popularity": paired,
            "profiles": profile_metrics,
        },
    )
    timing = {
        "train_seconds": round(loop.train_seconds, 2),
        "evaluate_seconds": round(time.perf_counter() - eval_started, 2),
        "profile_generate_seconds": profile_seconds,
        "total_seconds_before_save": round(time.perf_counter() - started, 2),
        "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    _save(model, tokenizer, manifest, timing, out_dir=out_dir, overwrite=overwrite)

    return TinyRecTrainingResult(
        model_dir=out_dir,
        size=size,
        seed=seed,
        train_seconds=loop.train_seconds,
        total_seconds=time.perf_counter() - started,
        steps=loop.steps,
        epochs_completed=loop.epochs_completed,
        stopped_by_time_budget=loop.stopped_by_time_budget,
        time_paced=loop.time_paced,
        n_parameters=n_parameters,
        n_item_tokens=len(item_map),
        vocab_size=len(tokenizer),
        split_strategy=split.strategy if split is not None else None,
        history_order=order,
        final_loss=loop.final_loss,
        metrics=metrics,
        paired=paired,
        profile_metrics=profile_metrics,
    )
