"""TinyRec's optimisation loop: a fixed number of steps, the same bits for a seed on any load.

Schedule: AdamW (Loshchilov & Hutter, ICLR 2019), a linear warm-up over the first 4% of the
steps, then a cosine decay of the learning rate to a tenth of its peak (SGDR, Loshchilov &
Hutter, ICLR 2017, eq. 5, one cycle without restarts). The share of the schedule done is
``step / total_steps``: the steps, not the clock, set the pace, so training does the same
arithmetic on an idle laptop and on a loaded CI runner.

Determinism (:func:`deterministic_training`): every random number comes from generators
seeded from the training seed (torch's, forked so the caller's is untouched, and numpy's for
the data order); torch runs with ``torch.use_deterministic_algorithms(True)`` and a fixed
number of CPU threads (BLAS pools too, via threadpoolctl), because a reduction split over a
different number of threads sums in a different order. The same data, seed, settings,
thread count, library versions and CPU instruction set (``torch.backends.cpu.
get_cpu_capability()``, recorded in the manifest) therefore give byte-identical weights, at
any machine load.

Only when a caller passes ``time_budget_s`` does the clock take part: the share of the
schedule is then the larger of the steps' and the budget's share, and training stops when it
reaches one, so a slow machine still ends with an annealed model; the result records that it
was time-limited and whether the clock actually set the pace (then it is not reproducible).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .objectives import TrainingBatch, TrainingObjective

__all__ = [
    "LearningRateSchedule",
    "LoopResult",
    "deterministic_training",
    "run_training_loop",
    "seed_from",
]


def seed_from(*parts: object) -> int:
    """A 64-bit seed for one purpose (``seed_from(seed, "batches")``), the same in every run."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


@contextlib.contextmanager
def deterministic_training(*, seed: int, threads: int) -> Iterator[None]:
    """Run a block with torch's RNG seeded (and restored afterwards), deterministic
    algorithms on and ``threads`` CPU threads for torch and the BLAS/OpenMP pools."""
    import torch
    from threadpoolctl import threadpool_limits

    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        with threadpool_limits(limits=threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn_only)
        torch.set_num_threads(previous_threads)


@dataclass(frozen=True)
class LearningRateSchedule:
    """Linear warm-up over the first 4% of ``total_steps``, then cosine decay to ``peak / 10``."""

    peak: float
    total_steps: int

    @property
    def warmup(self) -> int:
        return max(1, int(0.04 * self.total_steps))

    def at(self, step: int, progress: float) -> float:
        """The learning rate of ``step`` when ``progress`` (0..1) of the schedule is done."""
        if step < self.warmup:
            return self.peak * (step + 1) / self.warmup
        return self.peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass(frozen=True)
class LoopResult:
    steps: int
    epochs_completed: float
    stopped_by_time_budget: bool
    time_paced: bool
    train_seconds: float
    final_loss: float


def run_training_loop(
    model: Any,
    epochs: Iterable[list[TrainingBatch]],
    *,
    objective: TrainingObjective,
    schedule: LearningRateSchedule,
    n_epochs: int,
    time_budget_s: float | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> LoopResult:
    """Train ``model`` in place on each epoch's batches, in the order given.

    :param epochs: yields one list of batches per epoch; it is consumed lazily, one epoch at
        a time, so a generator that draws each epoch's order from a seeded generator draws
        exactly as many numbers whatever the machine.
    :param time_budget_s: ``None`` (default) runs every step of the schedule; a number stops
        once the budget's share of the schedule reaches one (see the module docstring).
    """
    import torch

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=schedule.peak, betas=(0.9, 0.98), weight_decay=0.01
    )
    wants_losses = type(objective).after_step is not TrainingObjective.after_step
    model.train()
    started = time.perf_counter()
    step = 0
    stopped = False
    time_paced = False
    epochs_done = 0.0
    recent_losses: list[float] = []
    for epoch, batches in enumerate(epochs):
        for index, batch in enumerate(batches):
            share = step / schedule.total_steps
            if time_budget_s is not None:
                by_time = (
                    (time.perf_counter() - started) / time_budget_s if time_budget_s > 0 else 1.0
                )
                time_paced = time_paced or (by_time > share and step >= schedule.warmup)
                share = max(share, by_time)
            if share >= 1.0:  # only the clock can get here before the last step
                stopped = time_paced = True
                epochs_done = epoch + index / max(1, len(batches))
                break
            for group in optimizer.param_groups:
                group["lr"] = schedule.at(step, share)
            loss, losses = objective.loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            recent_losses = [*recent_losses[-49:], float(loss.detach())]
            if wants_losses:
                objective.after_step(step, losses.per_example().detach().numpy(), batch)
            step += 1
        if stopped:
            break
        epochs_done = epoch + 1.0
        progress(f"epoch {epoch + 1}/{n_epochs}: loss {np.mean(recent_losses):.3f}")
    model.eval()
    return LoopResult(
        steps=step,
        epochs_completed=epochs_done,
        stopped_by_time_budget=stopped,
        time_paced=time_paced,
        train_seconds=time.perf_counter() - started,
        final_loss=float(np.mean(recent_losses)) if recent_losses else float("nan"),
    )
