"""Group-wise training objectives: Group DRO (two update rules) and popularity reweighting.

Every objective here reads the group of each target token from :attr:`TrainingBatch.groups`
(``-1``: no target) and plugs into TinyRec's loop as a :class:`TrainingObjective`. With ``G``
groups, ``L_g`` is the mean cross-entropy of the batch's target tokens in group ``g`` (groups
absent from the batch have no loss this step and keep their weight).

* :class:`OnlineGroupDRO`: Sagawa, Koh, Hashimoto & Liang, "Distributionally Robust Neural
  Networks", ICLR 2020, Algorithm 1 (online exponentiated-gradient ascent on the group
  weights): ``q_g <- q_g exp(eta L_g)``, ``q <- q / sum_g q_g``, then the step minimises
  ``sum_g q_g L_g``. Default ``eta = 0.01``.
* :class:`KLGroupDRO`: the KL-regularised DRO objective over the group simplex,
  ``max_q sum_g q_g L_g - tau KL(q || p) = tau log sum_g p_g exp(L_g / tau)`` (the
  Donsker-Varadhan / log-sum-exp dual; GDRT, arXiv 2510.10978, the closed-form objective),
  whose gradient weights the groups by ``q*_g = softmax(log p_g + L_g / tau)``; ``p`` is the
  groups' share of training target tokens.
* both mix with plain cross-entropy: ``(1 - ce_mix) * DRO + ce_mix * CE``.
* :class:`GroupWeightedCrossEntropy`: a fixed weight per group, ``sum_j w_{g(j)} l_j /
  sum_j w_{g(j)}``; with :func:`ifairlrs_weights` it is IFairLRS's in-learning reweighting
  (Jiang et al., "Item-side Fairness of Large Language Model-based Recommendation System",
  WWW 2024): a target of popularity group ``g`` weighs ``h_g / t_g``, the group's share of the
  training histories over its share of the training targets.

Each records its training curve (:attr:`GroupObjective.curve`): per step, the group losses
and the group weights used.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .objectives import TargetLosses, TrainingBatch, TrainingObjective

if TYPE_CHECKING:
    import torch

__all__ = [
    "CurvePoint",
    "GroupObjective",
    "GroupWeightedCrossEntropy",
    "KLGroupDRO",
    "OnlineGroupDRO",
    "ifairlrs_weights",
]


@dataclass(frozen=True)
class CurvePoint:
    """One step of a group objective: each group's mean loss (NaN: absent) and weight."""

    step: int
    losses: tuple[float, ...]
    weights: tuple[float, ...]


def _group_means(
    losses: TargetLosses, groups: np.ndarray, n_groups: int
) -> tuple[torch.Tensor, np.ndarray]:
    """(G,) mean token loss per group (0 where absent; differentiable) and the presence mask."""
    import torch

    index = torch.from_numpy(np.asarray(groups, dtype=np.int64))
    sums = torch.zeros(n_groups, dtype=losses.token_loss.dtype).index_add(
        0, index, losses.token_loss
    )
    counts = np.bincount(groups, minlength=n_groups)[:n_groups]
    denominator = torch.from_numpy(np.maximum(counts, 1).astype(np.float32))
    return sums / denominator.to(sums.dtype), counts > 0


@dataclass
class GroupObjective(TrainingObjective, ABC):
    """Shared parts of the group objectives: ``n_groups``, the CE mix and the curve."""

    n_groups: int
    ce_mix: float = 0.0
    curve: list[CurvePoint] = field(default_factory=list, init=False, repr=False)
    _step: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.n_groups < 1:
            raise ValueError("a group objective needs at least one group")
        if not 0.0 <= self.ce_mix <= 1.0:
            raise ValueError("ce_mix must be in [0, 1]")

    @abstractmethod
    def group_weights(self, group_loss: np.ndarray, present: np.ndarray) -> np.ndarray:
        """The weight of each group this step (summing to one over the present groups)."""

    def group_objective(
        self, group_loss: torch.Tensor, weights: np.ndarray, present: np.ndarray
    ) -> torch.Tensor:
        """The DRO part of the loss; default ``sum_g q_g L_g`` over the present groups."""
        import torch

        return (torch.from_numpy(weights.astype(np.float32)) * group_loss).sum()

    def reduce(
        self, losses: TargetLosses, weights: np.ndarray | None, batch: TrainingBatch
    ) -> torch.Tensor:
        groups = batch.target_groups()
        valid = groups >= 0
        if not valid.all():
            raise ValueError("every target token of a group objective's batch needs a group")
        group_loss, present = _group_means(losses, groups, self.n_groups)
        detached = group_loss.detach().numpy().astype(np.float64)
        q = self.group_weights(detached, present)
        loss = self.group_objective(group_loss, q, present)
        self.curve.append(
            CurvePoint(
                self._step,
                tuple(
                    float(v) if p else float("nan") for v, p in zip(detached, present, strict=True)
                ),
                tuple(float(v) for v in q),
            )
        )
        self._step += 1
        if self.ce_mix > 0:
            loss = (1 - self.ce_mix) * loss + self.ce_mix * losses.token_loss.mean()
        return loss

    def curve_arrays(self) -> dict[str, list[Any]]:
        """The curve as JSON-ready lists: ``step``, ``losses[i][g]`` (None: the group was not
        in the batch) and ``weights[i][g]``."""
        return {
            "step": [p.step for p in self.curve],
            "losses": [[v if np.isfinite(v) else None for v in p.losses] for p in self.curve],
            "weights": [list(p.weights) for p in self.curve],
        }


@dataclass
class OnlineGroupDRO(GroupObjective):
    """Group DRO with the online exponentiated-gradient update (Sagawa et al. 2020, Alg. 1)."""

    eta: float = 0.01
    name = "group_dro_online"
    q: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.eta <= 0:
            raise ValueError("eta must be positive")
        self.q = np.full(self.n_groups, 1.0 / self.n_groups)

    def group_weights(self, group_loss: np.ndarray, present: np.ndarray) -> np.ndarray:
        # Algorithm 1, line 5: q_g <- q_g exp(eta * L_g) for the groups in the batch,
        # then renormalise over all groups (absent groups keep their share of the mass).
        update = np.where(present, self.eta * group_loss, 0.0)
        q = self.q * np.exp(update - update.max())
        self.q = q / q.sum()
        # Line 6: the step descends sum_g q_g L_g; only present groups have a loss.
        used = np.where(present, self.q, 0.0)
        return used / used.sum()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "groups": self.n_groups, "eta": self.eta, "ce_mix": self.ce_mix}


@dataclass
class KLGroupDRO(GroupObjective):
    """``tau log sum_g p_g exp(L_g / tau)``: KL-regularised Group DRO in closed form."""

    tau: float = 1.0
    prior: Sequence[float] | None = None
    name = "group_dro_kl"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tau <= 0:
            raise ValueError("tau must be positive")
        p = np.full(self.n_groups, 1.0) if self.prior is None else np.asarray(self.prior, float)
        if p.shape != (self.n_groups,) or (p <= 0).any() or not np.isfinite(p).all():
            raise ValueError("the prior needs one positive weight per group")
        self.log_prior = np.log(p / p.sum())

    def _logits(self, group_loss: np.ndarray, present: np.ndarray) -> np.ndarray:
        return np.where(present, self.log_prior + group_loss / self.tau, -np.inf)

    def group_weights(self, group_loss: np.ndarray, present: np.ndarray) -> np.ndarray:
        # q*_g = p_g exp(L_g / tau) / sum_h p_h exp(L_h / tau): the maximiser of
        # sum_g q_g L_g - tau KL(q || p), and the gradient weights of the log-sum-exp.
        z = self._logits(group_loss, present)
        w = np.exp(z - z.max())
        return w / w.sum()

    def group_objective(
        self, group_loss: torch.Tensor, weights: np.ndarray, present: np.ndarray
    ) -> torch.Tensor:
        import torch

        mask = torch.from_numpy(present)
        log_p = torch.from_numpy(self.log_prior.astype(np.float32)).to(group_loss.dtype)
        # prior renormalised over the groups in the batch: tau log sum_g p_g exp(L_g / tau)
        log_p = log_p[mask] - torch.logsumexp(log_p[mask], dim=0)
        return self.tau * torch.logsumexp(log_p + group_loss[mask] / self.tau, dim=0)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "groups": self.n_groups,
            "tau": self.tau,
            "prior": [round(float(v), 6) for v in np.exp(self.log_prior)],
            "ce_mix": self.ce_mix,
        }


@dataclass
class GroupWeightedCrossEntropy(GroupObjective):
    """Cross-entropy with a fixed weight per target group (IFairLRS with
    :func:`ifairlrs_weights`)."""

    weights: Sequence[float] = ()
    name = "group_weighted_cross_entropy"

    def __post_init__(self) -> None:
        super().__post_init__()
        w = np.asarray(self.weights, dtype=np.float64)
        if w.shape != (self.n_groups,) or (w < 0).any() or not np.isfinite(w).all():
            raise ValueError("group weights need one finite, non-negative weight per group")
        self.fixed = w

    def group_weights(self, group_loss: np.ndarray, present: np.ndarray) -> np.ndarray:
        return np.where(present, self.fixed, 0.0)

    def reduce(
        self, losses: TargetLosses, weights: np.ndarray | None, batch: TrainingBatch
    ) -> torch.Tensor:
        import torch

        groups = batch.target_groups()
        token_weight = torch.from_numpy(self.fixed[groups].astype(np.float32))
        group_loss, present = _group_means(losses, groups, self.n_groups)
        self.curve.append(
            CurvePoint(
                self._step,
                tuple(
                    float(v) if p else float("nan")
                    for v, p in zip(group_loss.detach().numpy(), present, strict=True)
                ),
                tuple(float(v) for v in self.fixed),
            )
        )
        self._step += 1
        return (token_weight * losses.token_loss).sum() / token_weight.sum().clamp(min=1e-12)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "groups": self.n_groups,
            "weights": [round(float(v), 6) for v in self.fixed],
        }


def ifairlrs_weights(
    history_groups: np.ndarray, target_groups: np.ndarray, n_groups: int
) -> np.ndarray:
    """IFairLRS (Jiang et al. WWW 2024) in-learning weights: ``w_g = h_g / t_g``, the share of
    popularity group ``g`` among the training histories' items over its share among the
    training targets (1 for a group with no targets)."""
    h = np.bincount(np.asarray(history_groups, dtype=np.int64), minlength=n_groups)[:n_groups]
    t = np.bincount(np.asarray(target_groups, dtype=np.int64), minlength=n_groups)[:n_groups]
    h_share = h / max(h.sum(), 1)
    t_share = t / max(t.sum(), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(t_share > 0, h_share / t_share, 1.0)
    return w
