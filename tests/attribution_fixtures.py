"""A tiny TinyRec trained once per test process, and recommendation prompts over its items,
for the attribution tests."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from audit_sdk.adapters.huggingface_adapter import HuggingFaceAdapter
from audit_sdk.adapters.tinyrec import read_manifest

from audit_sdk.attribution import SpannedPrompt, spanned_recommendation_prompt

from .tinyrec_fixtures import train_tiny_tinyrec


@functools.cache
def tiny_model_dir() -> Path:
    """Trained on first use (about 5 s), then shared by every attribution test module."""
    root = Path(tempfile.mkdtemp(prefix="audit-sdk-faa-"))
    train_tiny_tinyrec(root / "model", holdout=False)
    return root / "model"


def tiny_adapter() -> HuggingFaceAdapter:
    return HuggingFaceAdapter(HuggingFaceAdapter.Params(model_dir=str(tiny_model_dir())))


def item_titles(model_dir: Path, n: int = 40) -> list[str]:
    """Titles of the model's item tokens (each token's text is the title and a newline)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    tokens = list(read_manifest(model_dir).item_tokens)[:n]
    return [tokenizer.convert_ids_to_tokens(t).removesuffix("\n") for t in tokens]


def history_prompts(
    n: int, *, history: int = 3, target_items: int = 2, groups: tuple[str, ...] = ("a", "b")
) -> tuple[list[SpannedPrompt], list[str]]:
    """``n`` recommendation prompts of ``history`` items each and, as each target, the title
    lines of the ``target_items`` items that follow."""
    titles = item_titles(tiny_model_dir())
    prompts: list[SpannedPrompt] = []
    targets: list[str] = []
    for i in range(n):
        window = [titles[(i + j) % len(titles)] for j in range(history + target_items)]
        prompts.append(
            spanned_recommendation_prompt(
                window[:history],
                unit="track",
                order="chronological",
                prompt_id=f"user{i}",
                group=groups[i % len(groups)],
            )
        )
        targets.append("".join(f"{t}\n" for t in window[history:]))
    return prompts, targets
