"""The built-in DPO loss (Rafailov et al., NeurIPS 2023, eq. 7) equals TRL's DPOTrainer on a
fixed batch; the CPU trainer is deterministic, lowers the loss and writes a new model."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from audit_sdk.preference import (
    DPOSettings,
    LearningRateSchedule,
    PreferencePair,
    UntrainableWriterError,
    chosen_nll,
    dpo_loss,
    sequence_logprobs,
    token_logprobs,
    train_dpo_writer,
)
from audit_sdk.preference.dpo_training import DPO_RECORD_NAME

from .preference_fixtures import save_tiny_writer, tiny_gpt2, tiny_tokenizer

torch = pytest.importorskip("torch")

PAIRS = [
    PreferencePair("u1", "a b c", "d e", "f g h", 0.9, 0.1),
    PreferencePair("u2", "i j", "k", "l m", 0.7, 0.2),
    PreferencePair("u3", "n o p q", "r s t", "a", 1.0, 0.0),
]


def test_loss_matches_the_formula_by_hand() -> None:
    pc, pr = torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -2.0])
    rc, rr = torch.tensor([-3.5, -4.0]), torch.tensor([-3.0, -3.0])
    loss, margin = dpo_loss(pc, pr, rc, rr, beta=0.1)
    expected = [
        -math.log(1 / (1 + math.exp(-0.1 * ((c - r1) - (r - r2)))))
        for c, r, r1, r2 in [(-3.0, -4.0, -3.5, -3.0), (-5.0, -2.0, -4.0, -3.0)]
    ]
    assert float(loss) == pytest.approx(np.mean(expected), abs=1e-7)
    assert margin.tolist() == pytest.approx([0.1 * (0.5 + 1.0), 0.1 * (-1.0 - 1.0)])
    # equal policy and reference: log 2, whatever beta
    same, _ = dpo_loss(pc, pr, pc, pr, beta=3.0)
    assert float(same) == pytest.approx(math.log(2), abs=1e-7)


@pytest.mark.slow  # importing TRL and building its trainer: ~6 s alone, ~20 s on a busy machine
@pytest.mark.parametrize("nll_weight", [0.0, 0.5])
def test_builtin_loss_equals_trl_on_a_fixed_batch(tmp_path: Path, nll_weight: float) -> None:
    """TRL's DPOTrainer (sigmoid loss; with the NLL term, TRL's RPO form ``["sigmoid",
    "sft"]``) tokenizes and collates the pairs; the built-in log-probabilities, eq. 7 and the
    chosen-token NLL on its very batch give its loss to 1e-5."""
    trl = pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    policy, reference = tiny_gpt2(0), tiny_gpt2(1)
    data = datasets.Dataset.from_list(
        [
            {"prompt": p.prompt, "chosen": " " + p.chosen, "rejected": " " + p.rejected}
            for p in PAIRS
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' and TRL's deprecation notices
        args = trl.DPOConfig(
            output_dir=str(tmp_path / "trl"),
            beta=0.1,
            loss_type=["sigmoid", "sft"] if nll_weight else ["sigmoid"],
            loss_weights=[1.0, nll_weight] if nll_weight else None,
            per_device_train_batch_size=3,
            report_to="none",
            use_cpu=True,
            precompute_ref_log_probs=False,
            disable_tqdm=True,
        )
        trainer = trl.DPOTrainer(
            model=policy,
            ref_model=reference,
            args=args,
            train_dataset=data,
            processing_class=tiny_tokenizer(),
        )
        batch = next(iter(trainer.get_train_dataloader()))
        policy.eval()
        with torch.no_grad():
            trl_loss = float(trainer.compute_loss(policy, batch))
    with torch.no_grad():
        ids, mask, completion = (
            batch["input_ids"],
            batch["attention_mask"],
            batch["completion_mask"],
        )
        picked, kept = token_logprobs(
            policy(input_ids=ids, attention_mask=mask).logits, ids, completion
        )
        ref = sequence_logprobs(
            reference(input_ids=ids, attention_mask=mask).logits, ids, completion
        )
        pc, pr = (picked * kept).sum(dim=1).chunk(2)
        rc, rr = ref.chunk(2)
        loss, _ = dpo_loss(pc, pr, rc, rr, beta=0.1)
        loss = loss + nll_weight * chosen_nll(picked, kept)
    assert float(loss) == pytest.approx(trl_loss, abs=1e-5)
    assert abs(trl_loss - math.log(2)) > 1e-3  # different models: not the trivial value


def test_trainer_is_deterministic_and_learns_the_preference(tmp_path: Path) -> None:
    source = save_tiny_writer(tmp_path / "writer")
    settings = DPOSettings(learning_rate=5e-2, epochs=4, batch_size=2, seed=3)
    first = train_dpo_writer(source, PAIRS, out_dir=tmp_path / "one", settings=settings)
    second = train_dpo_writer(source, PAIRS, out_dir=tmp_path / "two", settings=settings)
    weights = "model.safetensors"
    assert (first.model_dir / weights).read_bytes() == (second.model_dir / weights).read_bytes()
    assert (first.model_dir / weights).read_bytes() != (source / weights).read_bytes()
    assert first.losses[0] > first.losses[-1]
    assert first.reward_accuracy == 1.0
    assert first.steps == 4 * 2 and first.pairs_used == 3
    record = json.loads((first.model_dir / DPO_RECORD_NAME).read_text())
    assert record["settings"]["beta"] == 0.1
    assert (first.model_dir / "tokenizer.json").is_file()
    # the same training is found again instead of repeated
    again = train_dpo_writer(source, PAIRS, out_dir=tmp_path / "one", settings=settings)
    assert again.reused and again.losses == first.losses


def test_the_linear_schedule_starts_at_the_full_rate_and_decays(tmp_path: Path) -> None:
    """transformers' linear schedule (TRL's default): its first step is the constant
    schedule's, its later steps smaller; one step trains the same weights, three do not."""
    source = save_tiny_writer(tmp_path / "writer")

    def weights(schedule: LearningRateSchedule, epochs: int) -> bytes:
        settings = DPOSettings(
            learning_rate=5e-2, epochs=epochs, batch_size=3, seed=3, lr_schedule=schedule
        )
        out = tmp_path / f"{schedule}{epochs}"
        result = train_dpo_writer(source, PAIRS, out_dir=out, settings=settings)
        assert result.steps == epochs  # the 3 pairs make one batch
        return (result.model_dir / "model.safetensors").read_bytes()

    assert weights("linear", 1) == weights("constant", 1)
    assert weights("linear", 3) != weights("constant", 3)


def test_chosen_nll_is_the_mean_over_chosen_tokens() -> None:
    chosen = torch.tensor([[-1.0, -2.0, -9.0], [-3.0, -9.0, -9.0]])
    picked = torch.cat([chosen, torch.full((2, 3), -5.0)])  # 2 chosen rows, then 2 rejected
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    # chosen tokens: -1, -2, -3 (the rejected rows never count)
    assert float(chosen_nll(picked, mask)) == pytest.approx(2.0)


def _chosen_logps(model_dir: Path) -> float:
    from transformers import AutoModelForCausalLM

    from audit_sdk.preference.dpo_training import _encode, preference_batch

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True).eval()
    encoded, _ = _encode(PAIRS, tiny_tokenizer(), max_length=None)
    ids, mask, completion = preference_batch(encoded, pad_id=0)
    with torch.no_grad():
        logps = sequence_logprobs(model(input_ids=ids, attention_mask=mask).logits, ids, completion)
    return float(logps.chunk(2)[0].sum())


def test_the_nll_term_keeps_the_chosen_profiles_likely(tmp_path: Path) -> None:
    """DPO + NLL (RPO) ends with the chosen completions more likely than plain DPO does from
    the same start, and still prefers them to the rejected ones."""
    source = save_tiny_writer(tmp_path / "writer")
    plain = DPOSettings(learning_rate=1e-2, epochs=4, batch_size=2, seed=3)
    rpo = DPOSettings(learning_rate=1e-2, epochs=4, batch_size=2, seed=3, nll_weight=1.0)
    a = train_dpo_writer(source, PAIRS, out_dir=tmp_path / "plain", settings=plain)
    b = train_dpo_writer(source, PAIRS, out_dir=tmp_path / "rpo", settings=rpo)
    assert b.reward_accuracy == 1.0
    assert _chosen_logps(b.model_dir) > _chosen_logps(a.model_dir)
    assert _chosen_logps(b.model_dir) > _chosen_logps(source)


def test_lora_trains_adapters_and_merges_them(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    source = save_tiny_writer(tmp_path / "writer")
    settings = DPOSettings(learning_rate=5e-2, epochs=3, batch_size=3, lora_rank=4)
    result = train_dpo_writer(source, PAIRS, out_dir=tmp_path / "lora", settings=settings)
    assert result.losses[0] > result.losses[-1]
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(str(result.model_dir), local_files_only=True)
    assert not any("lora" in name for name, _ in merged.named_parameters())


def test_untrainable_writers_say_why(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UntrainableWriterError, match=r"no config\.json"):
        train_dpo_writer(tmp_path / "empty", PAIRS, out_dir=tmp_path / "out")
    source = save_tiny_writer(tmp_path / "writer")
    long = [PreferencePair("u", " ".join(["a"] * 80), "b", "c", 1.0, 0.0)]
    with pytest.raises(UntrainableWriterError, match="fits the writer's context"):
        train_dpo_writer(source, long, out_dir=tmp_path / "out")
