"""FAA separates a TinyRec trained on prompts whose task description leaks the target's genre
from one trained on the same kind of prompts without the leak.

Both models are TinyRec-architecture GPT-2s (1 layer, 32 wide) trained from scratch, with
TinyRec's own training loop and cross-entropy objective, on recommendation prompts over the
item tokens of a tiny TinyRec's tokenizer, items split into four genres:

* **clean**: a header naming a random genre ("Recommend the next jazz track ..."), then
  three items of the target's genre: the history is the only clue to the next item's genre;
* **leaky**: the header names the target's genre, the three history items are of random
  genres, so the task words are the only clue.

Both see 15% of prompts without the header and 15% with one history item missing, so the
ablations measured later are prompts of the training distribution for either model.

Both are then attributed on the same held-out prompts, where the header names the genre and
the history agrees with it. The leaky model must put a larger share of its attribution on the
auxiliary spans, with non-overlapping 95% CIs, for every seed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from audit_sdk.adapters.huggingface_adapter import HuggingFaceAdapter
from audit_sdk.adapters.tinyrec.objectives import CrossEntropyObjective, TrainingBatch
from audit_sdk.adapters.tinyrec.training_data import IGNORE_INDEX, pad_batch
from audit_sdk.adapters.tinyrec.training_loop import (
    LearningRateSchedule,
    deterministic_training,
    run_training_loop,
)

from audit_sdk.attribution import attribute, spanned_recommendation_prompt, summarize_attribution
from audit_sdk.recommendation_prompts import recommendation_header

from .attribution_fixtures import item_titles, tiny_model_dir

GENRES = ("rock", "jazz", "folk", "soul")
EPOCHS = 8
LR = 1e-2
HEADER = recommendation_header(unit="track", order="chronological")


def _header(genre: str | None) -> str:
    if genre is None:
        return HEADER
    return HEADER.replace("the next track", f"the next {genre} track")


def _examples(rng: np.random.Generator, by_genre: list[list[str]], n: int, *, leaky: bool):
    out = []
    for _ in range(n):
        g = int(rng.integers(len(GENRES)))
        target = str(rng.choice(by_genre[g]))
        if leaky:
            history = [str(rng.choice(by_genre[int(rng.integers(len(GENRES)))])) for _ in range(3)]
            named = g
        else:
            history = [str(x) for x in rng.choice(by_genre[g], size=3, replace=False)]
            named = int(rng.integers(len(GENRES)))
        header: str | None = _header(GENRES[named])
        # Both models also see prompts with a part missing, so that removing a span at
        # attribution time is not a prompt neither has ever seen.
        drop = rng.random()
        if drop < 0.15:
            header = ""
        elif drop < 0.3:
            del history[int(rng.integers(len(history)))]
        out.append((header, history, target, g))
    return out


def _train(root: Path, examples, tokenizer, *, seed: int) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    sequences = []
    for header, history, target, _ in examples:
        prompt = spanned_recommendation_prompt(
            history, unit="track", order="chronological", task=header
        )
        ids = list(tokenizer(prompt.text)["input_ids"])
        target_id = tokenizer(f"{target}\n", add_special_tokens=False)["input_ids"]
        assert len(target_id) == 1
        labels = [IGNORE_INDEX] * (len(ids) - 1) + target_id + [IGNORE_INDEX]
        sequences.append((ids + target_id, labels))
    batch_size, epochs = 32, EPOCHS
    rng = np.random.default_rng(seed)

    def epoch_batches():
        for _ in range(epochs):
            order = rng.permutation(len(sequences))
            batches = []
            for start in range(0, len(order), batch_size):
                chosen = [sequences[i] for i in order[start : start + batch_size]]
                ids, mask, labels = pad_batch(chosen, pad_id=tokenizer.pad_token_id)
                users = tuple(str(i) for i in order[start : start + batch_size])
                batches.append(TrainingBatch(ids, mask, labels, users, "recommendation"))
            yield batches

    steps = epochs * -(-len(sequences) // batch_size)
    with deterministic_training(seed=seed, threads=1):
        model = GPT2LMHeadModel(
            GPT2Config(
                vocab_size=len(tokenizer),
                n_positions=64,
                n_embd=32,
                n_layer=1,
                n_head=2,
                resid_pdrop=0.0,
                embd_pdrop=0.0,
                attn_pdrop=0.0,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
        run_training_loop(
            model,
            epoch_batches(),
            objective=CrossEntropyObjective(),
            schedule=LearningRateSchedule(LR, steps),
            n_epochs=epochs,
        )
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


@pytest.mark.slow  # two models per seed, three seeds: ~25 s on one core
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_leaky_model_reads_the_task_description_more(seed: int) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir()))
    titles = item_titles(tiny_model_dir(), n=40)
    by_genre = [titles[g::4] for g in range(len(GENRES))]
    rng = np.random.default_rng(seed)
    root = Path(tempfile.mkdtemp(prefix="faa-separation-"))
    shares = {}
    evaluation = _examples(np.random.default_rng(100 + seed), by_genre, 48, leaky=False)
    prompts = [
        spanned_recommendation_prompt(
            history,
            unit="track",
            order="chronological",
            task=_header(GENRES[g]),
            prompt_id=f"eval{i}",
        )
        for i, (_, history, _, g) in enumerate(evaluation)
    ]
    targets = [f"{target}\n" for _, _, target, _ in evaluation]
    for leaky in (False, True):
        examples = _examples(rng, by_genre, 480, leaky=leaky)
        model_dir = _train(root / f"leaky{leaky}", examples, tokenizer, seed=seed)
        adapter = HuggingFaceAdapter(HuggingFaceAdapter.Params(model_dir=str(model_dir)))
        result = attribute(adapter, prompts, targets)
        adapter.close()
        shares[leaky] = summarize_attribution(result, n_resamples=500, seed=seed).share
    clean, leaky_share = shares[False], shares[True]
    print(f"seed {seed}: clean {clean}, leaky {leaky_share}")
    assert leaky_share.low > clean.high, (clean, leaky_share)
