"""What TinyRec's training minimises: a small, typed objective interface.

The training loop (:mod:`.training_loop`) hands every step's :class:`TrainingBatch` to a
:class:`TrainingObjective` and minimises the scalar it returns. An objective has three hooks:

* :meth:`~TrainingObjective.example_weights`: a weight per batch row (``None``: uniform);
* :meth:`~TrainingObjective.reduce`: per-token losses at the target positions -> the scalar;
* :meth:`~TrainingObjective.after_step`: sees each row's loss after the step (an online
  re-weighting such as Group-DRO's updates its group weights here).

and one main method, :meth:`~TrainingObjective.loss`, which runs the model at the target
positions and calls the hooks; an objective that needs another forward pass (a preference
loss with a frozen reference model) overrides it. :class:`CrossEntropyObjective` is the
default and reproduces TinyRec's original loss exactly; :class:`WeightedCrossEntropyObjective`
weights each example by its user (the building block of group-weighted training).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from .training_data import IGNORE_INDEX

if TYPE_CHECKING:
    import torch

__all__ = [
    "CrossEntropyObjective",
    "TargetLosses",
    "TrainingBatch",
    "TrainingObjective",
    "WeightedCrossEntropyObjective",
]

Task = Literal["recommendation", "profile"]


@dataclass(frozen=True)
class TrainingBatch:
    """One optimizer step's examples, right-padded.

    ``labels[r, t]`` is the token that should follow position ``t`` of row ``r``
    (``IGNORE_INDEX`` where nothing is predicted); ``user_ids[r]`` is the user whose history
    or profile row ``r`` is, and ``task`` which of TinyRec's two tasks the batch holds.
    ``groups[r, t]`` (optional, same shape as ``labels``) is the group of the target at
    ``(r, t)`` for group-wise objectives (Group DRO, popularity reweighting); ``-1`` where
    there is no target.
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray
    labels: np.ndarray
    user_ids: tuple[str, ...]
    task: Task
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.user_ids)

    def target_groups(self) -> np.ndarray:
        """The group of every target token, in the row-major order of :class:`TargetLosses`."""
        if self.groups is None:
            raise ValueError("this batch carries no target groups")
        return np.asarray(self.groups)[np.asarray(self.labels) != IGNORE_INDEX]


@dataclass(frozen=True)
class TargetLosses:
    """Cross-entropy of every target token of a batch, in row-major order.

    ``token_loss[j]`` is the loss of target token ``j``, ``row[j]`` the batch row it belongs
    to; ``n_rows`` is the batch size.
    """

    token_loss: torch.Tensor
    row: torch.Tensor
    n_rows: int

    def per_example(self) -> torch.Tensor:
        """Mean token loss of each row (0 for a row without targets)."""
        import torch

        sums = torch.zeros(self.n_rows, dtype=self.token_loss.dtype)
        sums = sums.index_add(0, self.row, self.token_loss)
        counts = torch.bincount(self.row, minlength=self.n_rows).to(self.token_loss.dtype)
        return sums / counts.clamp(min=1)


def target_logits(
    model: Any, batch: TrainingBatch
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits at the target positions only (the output layer runs nowhere else), the target
    token ids, and the row of each target.

    Works for any transformers causal LM: the backbone is ``base_model`` (GPT-2's
    ``transformer``, Llama's ``model``) and the output layer ``get_output_embeddings()``; a
    ``peft`` model is unwrapped to the model its adapters are injected into."""
    import torch

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = inner.base_model(
        input_ids=torch.from_numpy(batch.input_ids),
        attention_mask=torch.from_numpy(batch.attention_mask),
    ).last_hidden_state
    target = torch.from_numpy(batch.labels)
    selected = target != IGNORE_INDEX
    logits = inner.get_output_embeddings()(hidden[selected])
    rows = selected.nonzero()[:, 0]
    return logits, target[selected], rows


class TrainingObjective:
    """How a training batch becomes the scalar loss one optimizer step minimises.

    Subclasses set ``name`` and override any of the hooks; :meth:`describe` goes into the
    model's manifest, so two models trained with different objectives are told apart.
    """

    name: ClassVar[str] = "objective"

    def example_weights(self, batch: TrainingBatch) -> np.ndarray | None:
        """A non-negative weight per row of ``batch``; ``None`` weights all rows alike."""
        return None

    def reduce(
        self, losses: TargetLosses, weights: np.ndarray | None, batch: TrainingBatch
    ) -> torch.Tensor:
        """The batch's scalar loss from its per-token losses: the mean over target tokens,
        each token weighted by its row's weight when there are weights."""
        if weights is None:
            return losses.token_loss.mean()
        import torch

        token_weight = torch.from_numpy(np.asarray(weights, dtype=np.float32))[losses.row]
        return (token_weight * losses.token_loss).sum() / token_weight.sum().clamp(min=1e-12)

    def after_step(self, step: int, per_example_loss: np.ndarray, batch: TrainingBatch) -> None:
        """Called after each optimizer step with each row's mean token loss (detached)."""

    def loss(self, model: Any, batch: TrainingBatch) -> tuple[torch.Tensor, TargetLosses]:
        """Run ``model`` on ``batch``; the scalar to minimise and the per-token losses."""
        import torch

        logits, targets, rows = target_logits(model, batch)
        token_loss = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
        losses = TargetLosses(token_loss, rows, len(batch))
        return self.reduce(losses, self.example_weights(batch), batch), losses

    def describe(self) -> dict[str, Any]:
        """What identifies this objective in the manifest (and in the cache key)."""
        return {"name": self.name}


class CrossEntropyObjective(TrainingObjective):
    """Next-token cross-entropy averaged over every target token of the batch (default)."""

    name = "cross_entropy"

    def loss(self, model: Any, batch: TrainingBatch) -> tuple[torch.Tensor, TargetLosses]:
        import torch

        logits, targets, rows = target_logits(model, batch)
        # The fused mean, exactly as TinyRec always computed it; the per-token losses are
        # only for after_step and are not part of the graph.
        loss = torch.nn.functional.cross_entropy(logits, targets)
        with torch.no_grad():
            token_loss = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
        return loss, TargetLosses(token_loss, rows, len(batch))


class WeightedCrossEntropyObjective(TrainingObjective):
    """Cross-entropy with a weight per user: each target token counts with its user's weight.

    ``loss = sum_j w_{u(j)} l_j / sum_j w_{u(j)}`` over the batch's target tokens ``j``, with
    ``u(j)`` the user of token ``j``'s row. Users not in ``weights`` get ``default``. Uniform
    weights give the same gradients as :class:`CrossEntropyObjective`.

    :param weights: user id -> weight (non-negative, finite).
    """

    name = "weighted_cross_entropy"

    def __init__(self, weights: Mapping[str, float], *, default: float = 1.0) -> None:
        values = np.asarray([*weights.values(), default], dtype=np.float64)
        if not np.isfinite(values).all() or (values < 0).any():
            raise ValueError("example weights must be finite and non-negative")
        self.weights = dict(weights)
        self.default = float(default)

    def example_weights(self, batch: TrainingBatch) -> np.ndarray:
        return np.asarray(
            [self.weights.get(user, self.default) for user in batch.user_ids], dtype=np.float32
        )

    def describe(self) -> dict[str, Any]:
        import hashlib
        import json

        payload = json.dumps(sorted(self.weights.items()), separators=(",", ":"))
        return {
            "name": self.name,
            "default": self.default,
            "n_weighted_users": len(self.weights),
            "weights_sha256": hashlib.sha256(payload.encode()).hexdigest(),
        }
