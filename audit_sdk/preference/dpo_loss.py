"""The DPO objective (Rafailov et al., "Direct Preference Optimization: Your Language Model is
Secretly a Reward Model", NeurIPS 2023, eq. 7):

    L_DPO(pi_theta; pi_ref) = -E_(x, y_w, y_l) [ log sigma( beta * log(pi_theta(y_w|x) / pi_ref(y_w|x))
                                                        - beta * log(pi_theta(y_l|x) / pi_ref(y_l|x)) ) ]

with each log pi(y|x) the sum of the completion tokens' log-probabilities given the prompt and
the completion tokens before them (TRL's ``DPOTrainer`` with ``loss_type="sigmoid"`` computes the
same; ``tests/test_preference_dpo.py`` holds them equal to 1e-5 on a fixed batch).

With ``nll_weight`` alpha > 0 the loss is DPO + NLL (Pang et al., "Iterative Reasoning
Preference Optimization", NeurIPS 2024, eq. 1; RPO): alpha times the negative log-likelihood
of the chosen completions, averaged over their tokens in the batch. It keeps the writer's
likelihood of the preferred profiles up while the DPO term separates them from the rejected
ones; pure DPO can lower both, and a small writer then drifts from fluent text. The average
over the batch's chosen tokens is TRL's (``loss_type=["sigmoid", "sft"]``, ``loss_weights=[1,
alpha]``), which the test above also holds equal; the paper divides per sequence.
"""

from __future__ import annotations

from typing import Any

__all__ = ["chosen_nll", "dpo_loss", "sequence_logprobs", "token_logprobs"]


def token_logprobs(logits: Any, input_ids: Any, completion_mask: Any) -> tuple[Any, Any]:
    """Per row and token, the log-probability of each next token, and the float mask of the
    completion's tokens among them; both (n, t - 1).

    :param logits: (n, t, vocab) from a causal LM on ``input_ids``; the logits at column c
        predict the token at column c + 1.
    :param input_ids: (n, t) token ids (right- or left-padded).
    :param completion_mask: (n, t) 1 at the completion's tokens (end-of-text included), 0 at
        the prompt and padding.
    """
    import torch

    targets = input_ids[:, 1:]
    mask = completion_mask[:, 1:].to(torch.float32)
    logprobs = torch.log_softmax(logits[:, :-1, :].float(), dim=-1)
    picked = torch.gather(logprobs, 2, targets.unsqueeze(-1)).squeeze(-1)
    return picked, mask


def sequence_logprobs(logits: Any, input_ids: Any, completion_mask: Any) -> Any:
    """Per row, the summed log-probability of the tokens where ``completion_mask`` is 1 (the
    arguments as in :func:`token_logprobs`)."""
    picked, mask = token_logprobs(logits, input_ids, completion_mask)
    return (picked * mask).sum(dim=1)


def chosen_nll(picked: Any, mask: Any) -> Any:
    """The NLL term of DPO + NLL: minus the mean log-probability over every chosen token of
    the batch; ``picked`` and ``mask`` from :func:`token_logprobs` on a batch whose first
    half of rows are the chosen completions (TRL's layout)."""
    chosen_picked, _ = picked.chunk(2)
    chosen_mask, _ = mask.chunk(2)
    return -(chosen_picked * chosen_mask).sum() / chosen_mask.sum().clamp(min=1.0)


def dpo_loss(
    policy_chosen: Any,
    policy_rejected: Any,
    reference_chosen: Any,
    reference_rejected: Any,
    *,
    beta: float = 0.1,
) -> tuple[Any, Any]:
    """Mean DPO loss over the pairs (eq. 7) and each pair's implicit reward margin
    ``beta * (chosen log-ratio - rejected log-ratio)``; all arguments are (n,) sequence
    log-probabilities."""
    import torch.nn.functional as F

    margin = beta * ((policy_chosen - reference_chosen) - (policy_rejected - reference_rejected))
    return -F.logsigmoid(margin).mean(), margin
