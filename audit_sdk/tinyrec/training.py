"""Train TinyRec from scratch on CPU and measure it on held-out items.

TinyRec is a GPT-2-style causal LM (``transformers.GPT2Config``) with the tokenizer of
:mod:`audit_sdk.tinyrec.vocabulary`, trained with AdamW on the two tasks of
:mod:`audit_sdk.tinyrec.training_data`. :func:`train_tinyrec` splits the dataset
(:func:`audit_sdk.splitting.holdout_split`), trains on the training split, ranks the held-out
items of every audited user and reports NDCG@10 and recall@10 (with bootstrap CIs) next to the
popularity and random baselines, and the paired difference to popularity. It writes a standard
transformers model directory (``config.json``, ``model.safetensors``,
``generation_config.json``, tokenizer files) plus ``audit_sdk_tinyrec.json``, atomically: the
directory appears complete or not at all.

Schedule: AdamW, linear warm-up, then a cosine decay of the learning rate to a tenth. Its
progress is the share of the planned steps done or, when the machine is slower than the time
budget allows for, the share of ``time_budget_s`` spent, whichever is larger; training ends
when it reaches one, so a slow or busy machine still gets an annealed model within the budget.
Determinism: for a given seed, thread count and machine the weights are identical run to run
whenever the steps, not the clock, set the pace (``time_paced`` is then ``False``).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from audit_sdk.data.tables import Dataset
from audit_sdk.errors import AdapterError, DataValidationError
from audit_sdk.tinyrec.histories import history_order_for, user_histories
from audit_sdk.tinyrec.model_files import TINYREC_FORMAT_VERSION, TinyRecManifest
from audit_sdk.tinyrec.prompts import catalog_unit, clean_title
from audit_sdk.tinyrec.ranking import ItemRanker
from audit_sdk.tinyrec.training_data import (
    IGNORE_INDEX,
    ProfileExample,
    make_profile_examples,
    pad_batch,
    profile_sequences,
    recommendation_sequences,
)
from audit_sdk.tinyrec.vocabulary import build_tokenizer, choose_item_vocabulary
from audit_sdk.transformers_support import quiet_transformers

__all__ = [
    "SIZES",
    "TinyRecSettings",
    "TinyRecSize",
    "TinyRecTrainingResult",
    "train_tinyrec",
]

TinyRecSize = Literal["demo", "full"]


@dataclass(frozen=True)
class TinyRecSettings:
    """Architecture and training schedule of one TinyRec size."""

    n_embd: int
    n_layer: int
    n_head: int
    n_positions: int
    bpe_vocab_size: int
    epochs: int
    learning_rate: float
    rec_batch_size: int
    profile_batch_size: int
    profile_share: float  # profile examples per epoch, as a share of the users
    min_item_users: int
    max_history: int
    dropout: float
    time_budget_s: float
    item_init: Literal["svd", "random"] = "svd"


SIZES: dict[str, TinyRecSettings] = {
    "demo": TinyRecSettings(
        n_embd=96,
        n_layer=2,
        n_head=4,
        n_positions=1024,
        bpe_vocab_size=1500,
        epochs=6,
        learning_rate=3e-3,
        rec_batch_size=32,
        profile_batch_size=16,
        profile_share=0.35,
        min_item_users=3,
        max_history=48,
        dropout=0.0,
        time_budget_s=70.0,
    ),
    "full": TinyRecSettings(
        n_embd=128,
        n_layer=2,
        n_head=4,
        n_positions=1024,
        bpe_vocab_size=2000,
        epochs=10,
        learning_rate=3e-3,
        rec_batch_size=32,
        profile_batch_size=16,
        profile_share=0.35,
        min_item_users=3,
        max_history=64,
        dropout=0.0,
        time_budget_s=270.0,
    ),
}


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


def _default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _seed_from(*parts: object) -> int:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _profile_eval_users(users: list[str], *, seed: int, share: float = 0.1) -> set[str]:
    rng = np.random.default_rng(_seed_from(seed, "profile-eval-users"))
    n = max(1, round(share * len(users))) if len(users) >= 10 else 0
    return set(rng.choice(sorted(users), size=n, replace=False).tolist()) if n else set()


def _corpus(train: Dataset, examples: list[ProfileExample]) -> Iterator[str]:
    """Texts the BPE learns from: catalog titles, artists, genres and countries as running text
    shows them (after a space), and the training profile prompts and profiles."""
    catalog = train.catalog.frame
    for column in ("title", "artist", "country"):
        if column in catalog:
            for value in catalog[column].dropna().unique():
                yield " " + clean_title(value)
    if "genres" in catalog:
        for genres in catalog["genres"]:
            if len(genres):
                yield " " + ", ".join(map(str, genres))
    for example in examples:
        yield example.prompt
        yield " " + example.profile


def _next_token_logits_fn(model: Any, tokenizer: Any, *, batch_size: int = 64) -> Any:
    import torch

    def next_token_logits(prompts: list[str]) -> np.ndarray:
        outs = []
        for start in range(0, len(prompts), batch_size):
            enc = tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True)
            mask = enc["attention_mask"]
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.no_grad():
                logits = model(
                    input_ids=enc["input_ids"], attention_mask=mask, position_ids=positions
                ).logits
            outs.append(logits[:, -1, :].float().numpy())
        return np.concatenate(outs, axis=0)

    return next_token_logits


def _interval(values: np.ndarray, *, seed: int, salt: str) -> dict[str, float]:
    from audit_sdk.stats.bootstrap import mean_ci

    ci = mean_ci(values, rng=np.random.default_rng(_seed_from(seed, salt)), n_resamples=1000)
    return {"mean": ci.estimate, "low": ci.low, "high": ci.high, "n": float(ci.n)}


def _evaluate_recommendations(
    split: Any,
    ranker: ItemRanker,
    histories: dict[str, list[str]],
    logits_fn: Any,
    *,
    k: int,
    seed: int,
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, dict[str, float]]]:
    from audit_sdk.adapters.baseline_recommenders import PopularityRecommender, RandomRecommender
    from audit_sdk.metrics.ranking import ranking_metrics

    users = split.users
    test = split.test.interactions.frame
    recommendations = {"tinyrec": ranker.recommend(users, histories, logits_fn, k=k)}
    for name, cls in (("popularity", PopularityRecommender), ("random", RandomRecommender)):
        baseline = cls()
        baseline.fit(split.train)
        recommendations[name] = baseline.recommend(users, k=k)
    per_user = {
        name: ranking_metrics(recs, test, k=k).reindex(users)
        for name, recs in recommendations.items()
    }
    metric_names = [f"ndcg@{k}", f"recall@{k}", f"hit@{k}"]
    metrics = {
        name: {
            m: _interval(frame[m].to_numpy(dtype=float), seed=seed, salt=f"{name}:{m}")
            for m in metric_names
        }
        for name, frame in per_user.items()
    }
    paired = {
        m: _interval(
            per_user["tinyrec"][m].to_numpy(dtype=float)
            - per_user["popularity"][m].to_numpy(dtype=float),
            seed=seed,
            salt=f"paired:{m}",
        )
        for m in metric_names
    }
    return metrics, paired


def _evaluate_profiles(
    model: Any,
    tokenizer: Any,
    examples: list[ProfileExample],
    *,
    eos_id: int,
    max_length: int,
    n_generate: int,
) -> dict[str, float]:
    """Held-out users' profile task: token NLL of the template profile, and for up to
    ``n_generate`` of them, greedy generation compared with the template profile."""
    import torch
    from transformers import GenerationConfig

    if not examples:
        return {}
    sequences, _ = profile_sequences(examples, tokenizer, eos_id=eos_id, max_length=max_length)
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(sequences), 16):
            ids, mask, labels = pad_batch(
                sequences[start : start + 16], pad_id=tokenizer.pad_token_id
            )
            logits = model(
                input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
            ).logits
            target = torch.from_numpy(labels)
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(),
                target.reshape(-1),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            )
            total += float(loss)
            count += int((target != IGNORE_INDEX).sum())
    prompt_lengths = [
        len(ids) for ids in tokenizer([e.prompt for e in examples], verbose=False)["input_ids"]
    ]
    chosen = [e for e, n in zip(examples, prompt_lengths, strict=True) if n + 120 <= max_length]
    chosen = chosen[:n_generate]
    config = GenerationConfig(
        max_new_tokens=120,
        do_sample=False,
        eos_token_id=eos_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    exact = 0
    started = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(chosen), 16):
            batch = chosen[start : start + 16]
            enc = tokenizer([e.prompt for e in batch], return_tensors="pt", padding=True)
            out = model.generate(**enc, generation_config=config)
            texts = tokenizer.batch_decode(
                out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True
            )
            exact += sum(t.strip() == e.profile for t, e in zip(texts, batch, strict=True))
    return {
        "profile_token_nll": total / max(count, 1),
        "profile_exact_match": exact / max(len(chosen), 1),
        "profile_users": float(len({e.user_id for e in examples})),
        "profile_generated": float(len(chosen)),
        "profile_generate_seconds": time.perf_counter() - started,
    }


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
        matrix, n_components=k, random_state=_seed_from(seed, "svd") % (2**32)
    )
    factors = (vt.T * np.sqrt(singular)).astype(np.float64)
    factors *= model.config.initializer_range / max(float(factors.std()), 1e-12)
    embeddings = model.get_input_embeddings().weight
    with torch.no_grad():
        ids = torch.tensor([token_of_item[i] for i in items], dtype=torch.long)
        block = torch.zeros(len(items), width, dtype=embeddings.dtype)
        block[:, :k] = torch.from_numpy(factors).to(embeddings.dtype)
        embeddings[ids] = block


def _target_loss(model: Any, ids: np.ndarray, mask: np.ndarray, labels: np.ndarray) -> Any:
    """Mean cross-entropy at the target positions; the output layer runs only there."""
    import torch

    hidden = model.transformer(
        input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
    ).last_hidden_state
    target = torch.from_numpy(labels)
    selected = target != IGNORE_INDEX
    logits = model.lm_head(hidden[selected])
    return torch.nn.functional.cross_entropy(logits, target[selected])


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
    progress: Any = None,
) -> TinyRecTrainingResult:
    """Train TinyRec on ``dataset`` and save it to ``out_dir``.

    :param size: ``"demo"`` (trains in about a minute on 2 cores) or ``"full"``.
    :param time_budget_s: stop training after this many seconds (default: the size's budget);
        evaluation and saving come after it.
    :param holdout: split off ``test_items`` held-out items per user, train on the rest and
        report held-out metrics. ``False`` trains on all of ``dataset`` (the audit runner does
        this with its own training split, and measures the held-out items itself).
    :param threads: torch threads during training (default: up to 4 of the machine's cores);
        restored afterwards.
    :param settings: overrides the size's architecture and schedule (tests use tiny ones).
    :param progress: optional ``progress(message)`` callback.
    """
    import torch
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel

    started = time.perf_counter()
    cfg = settings or SIZES[size]
    budget = cfg.time_budget_s if time_budget_s is None else float(time_budget_s)
    threads = threads or _default_threads()
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

    say("building training examples")
    examples = make_profile_examples(
        train,
        windows=profile_windows,
        subset_variants=2,
        subset_keep=0.6,
        seed=_seed_from(seed, "profile-subsets"),
    )
    eval_users = _profile_eval_users(users, seed=seed) if holdout else set()
    train_examples = [e for e in examples if e.user_id not in eval_users]
    eval_examples = list(
        {e.user_id: e for e in reversed(examples) if e.user_id in eval_users}.values()
    )

    items = choose_item_vocabulary(train, min_item_users=cfg.min_item_users)
    if len(items) == 0:
        raise DataValidationError(
            f"no item was played by at least {cfg.min_item_users} training users, so TinyRec "
            "has nothing to recommend.",
            source=dataset.name,
            hint="use a larger dataset, or lower min_item_users in the settings",
        )
    tokenizer, item_map, n_collisions = build_tokenizer(
        _corpus(train, train_examples),
        items,
        bpe_vocab_size=cfg.bpe_vocab_size,
        model_max_length=cfg.n_positions,
    )
    token_of_item = {item: token for token, item in item_map.items()}
    rec_data = recommendation_sequences(
        [histories[u] for u in users],
        token_of_item,
        tokenizer,
        unit=unit,
        order=order,
        max_history=cfg.max_history,
    )
    profile_data, n_dropped = profile_sequences(
        train_examples, tokenizer, eos_id=tokenizer.eos_token_id, max_length=cfg.n_positions
    )

    with _torch_threads(threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed_from(seed, "torch") % (2**63))
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
        model = GPT2LMHeadModel(config)
        if cfg.item_init == "svd":
            _initialise_item_embeddings(model, train, token_of_item, seed=seed)
        n_parameters = sum(p.numel() for p in model.parameters())
        rng = np.random.default_rng(_seed_from(seed, "batches"))

        n_profile_per_epoch = min(len(profile_data), math.ceil(cfg.profile_share * len(users)))
        rec_batches_per_epoch = math.ceil(
            len([h for h in rec_data.histories if len(h)]) / cfg.rec_batch_size
        )
        profile_batches_per_epoch = math.ceil(n_profile_per_epoch / cfg.profile_batch_size)
        steps_per_epoch = rec_batches_per_epoch + profile_batches_per_epoch
        total_steps = max(1, steps_per_epoch * cfg.epochs)
        warmup = max(1, int(0.04 * total_steps))
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.98), weight_decay=0.01
        )

        def schedule_progress(step: int, elapsed: float) -> tuple[float, bool]:
            """Share of the schedule done: by steps, or by time when the time budget is
            further along (then the result is no longer step-deterministic)."""
            by_steps = step / total_steps
            by_time = elapsed / budget if budget > 0 else 1.0
            return max(by_steps, by_time), by_time > by_steps

        def lr_at(step: int, progress_share: float) -> float:
            if step < warmup:
                return cfg.learning_rate * (step + 1) / warmup
            return cfg.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress_share)))

        say(
            f"training TinyRec ({size}): {n_parameters:,} parameters, {len(item_map)} item "
            f"tokens, {len(users)} users, {len(profile_data)} profile examples"
        )
        model.train()
        train_started = time.perf_counter()
        step = 0
        stopped = False
        time_paced = False
        recent_losses: list[float] = []
        epochs_done = 0.0
        for epoch in range(cfg.epochs):
            rec_seqs = rec_data.epoch_sequences(rng)
            order_rec = rng.permutation(len(rec_seqs))
            batches: list[list[tuple[list[int], list[int]]]] = []
            for start in range(0, len(order_rec), cfg.rec_batch_size):
                batches.append([rec_seqs[i] for i in order_rec[start : start + cfg.rec_batch_size]])
            if n_profile_per_epoch:
                chosen = rng.choice(len(profile_data), size=n_profile_per_epoch, replace=False)
                chosen = chosen[
                    np.argsort([len(profile_data[i][0]) for i in chosen], kind="stable")
                ]
                for start in range(0, len(chosen), cfg.profile_batch_size):
                    batches.append(
                        [profile_data[i] for i in chosen[start : start + cfg.profile_batch_size]]
                    )
            for b_index, batch_index in enumerate(rng.permutation(len(batches))):
                share, by_time = schedule_progress(step, time.perf_counter() - train_started)
                time_paced = time_paced or (by_time and step >= warmup)
                if share >= 1.0:
                    stopped = True
                    epochs_done = epoch + b_index / max(1, len(batches))
                    break
                ids, mask, labels = pad_batch(batches[batch_index], pad_id=tokenizer.pad_token_id)
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, share)
                loss = _target_loss(model, ids, mask, labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                recent_losses = [*recent_losses[-49:], float(loss.detach())]
                step += 1
            if stopped:
                break
            epochs_done = epoch + 1.0
            say(f"epoch {epoch + 1}/{cfg.epochs}: loss {np.mean(recent_losses):.3f}")
        train_seconds = time.perf_counter() - train_started
        model.eval()

        metrics: dict[str, dict[str, dict[str, float]]] = {}
        paired: dict[str, dict[str, float]] = {}
        profile_metrics: dict[str, float] = {}
        token_titles = {t: tokenizer.convert_ids_to_tokens(t) for t in item_map}
        manifest = TinyRecManifest(
            item_tokens=item_map,
            unit=unit,
            history_order=order,
            max_history=cfg.max_history,
        )
        if split is not None:
            say("evaluating on held-out items")
            ranker = ItemRanker(manifest, token_titles)
            metrics, paired = _evaluate_recommendations(
                split, ranker, histories, _next_token_logits_fn(model, tokenizer), k=k, seed=seed
            )
            profile_metrics = _evaluate_profiles(
                model,
                tokenizer,
                eval_examples,
                eos_id=tokenizer.eos_token_id,
                max_length=cfg.n_positions,
                n_generate=32,
            )

        final_loss = float(np.mean(recent_losses)) if recent_losses else float("nan")
        training_info = {
            "size": size,
            "seed": seed,
            "settings": asdict(cfg),
            "threads": threads,
            "steps": step,
            "epochs_completed": epochs_done,
            "stopped_by_time_budget": stopped,
            "time_paced": time_paced,
            "time_budget_s": budget,
            "train_seconds": round(train_seconds, 2),
            "final_loss": final_loss,
            "n_parameters": n_parameters,
            "n_item_tokens": len(item_map),
            "n_item_candidates": items.n_candidates,
            "n_items_excluded": items.n_excluded + n_collisions,
            "n_profile_examples": len(profile_data),
            "n_profile_examples_too_long": n_dropped,
            "holdout": holdout,
            "split_strategy": split.strategy if split is not None else None,
            "test_items": test_items if holdout else None,
            "torch_version": torch.__version__,
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
            _publish(tmp_dir, out_dir, overwrite=overwrite)
        except BaseException:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise

    return TinyRecTrainingResult(
        model_dir=out_dir,
        size=size,
        seed=seed,
        train_seconds=train_seconds,
        total_seconds=time.perf_counter() - started,
        steps=step,
        epochs_completed=epochs_done,
        stopped_by_time_budget=stopped,
        time_paced=time_paced,
        n_parameters=n_parameters,
        n_item_tokens=len(item_map),
        vocab_size=len(tokenizer),
        split_strategy=split.strategy if split is not None else None,
        history_order=order,
        final_loss=final_loss,
        metrics=metrics,
        paired=paired,
        profile_metrics=profile_metrics,
    )
