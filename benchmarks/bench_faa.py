"""Feature-ablation attribution: captum's path vs the batched engine vs the minimal forwards.

Run from the repository root::

    python -m benchmarks.bench_faa            # 64 prompts x 3 spans, 10-token targets, CPU

A TinyRec (demo architecture: 2 layers, 96 wide; one epoch, since only speed is measured) is
trained on a synthetic world first (~20 s). Each prompt is the SDK's recommendation prompt
with 3 spans (the task header and two history items); each target is 10 item lines (10
tokens). Three timings, each the median of ``--repeats`` runs:

* **captum**: ``LLMAttribution(FeatureAblation(model), tokenizer)`` over a
  ``TextTemplateInput`` per prompt (the reference in tests/test_attribution_engine.py; no KV
  cache, see there), which decodes the target token by token for each of the 1 + 3 inputs;
* **engine**: :func:`audit_sdk.attribution.attribute` end to end (tokenizing, span mapping,
  ablation, batched scoring, log-softmax, results), plus the answer-prefix group captum lacks;
* **minimal**: only the model's forward passes over the same (1 + 3) x 64 pre-tokenized,
  pre-padded sequences in the same batches: the least any exact ablation engine must do.

Targets: engine >= 10x faster than captum; engine within 1.5x of minimal. All on one torch
thread (the adapter's default for a model this small).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _model(root: Path) -> Path:
    from audit_sdk.adapters.tinyrec import SIZES, train_tinyrec

    from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world

    world = generate_world(SyntheticWorldParams(seed=3, n_users=200, n_artists=40))
    settings = dataclasses.replace(SIZES["demo"], epochs=1, profile_share=0.05)
    train_tinyrec(world, out_dir=root / "model", holdout=False, settings=settings)
    return root / "model"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--target-tokens", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import torch
    from audit_sdk.adapters.huggingface_adapter import HuggingFaceAdapter, torch_threads
    from audit_sdk.adapters.tinyrec import read_manifest
    from captum.attr import FeatureAblation, LLMAttribution, TextTemplateInput
    from transformers import AutoTokenizer

    from audit_sdk.attribution import attribute, spanned_recommendation_prompt

    root = Path(tempfile.mkdtemp(prefix="bench-faa-"))
    started = time.perf_counter()
    model_dir = _model(root)
    print(f"trained TinyRec in {time.perf_counter() - started:.1f} s", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    titles = [
        tokenizer.convert_ids_to_tokens(t).removesuffix("\n")
        for t in read_manifest(model_dir).item_tokens
    ]
    rng = np.random.default_rng(0)
    prompts, targets = [], []
    for i in range(args.prompts):
        pick = rng.choice(len(titles), size=2 + args.target_tokens, replace=False)
        prompts.append(
            spanned_recommendation_prompt(
                [titles[j] for j in pick[:2]],
                unit="track",
                order="chronological",
                prompt_id=f"p{i}",
            )
        )
        targets.append("".join(f"{titles[j]}\n" for j in pick[2:]))
    adapter = HuggingFaceAdapter(HuggingFaceAdapter.Params(model_dir=str(model_dir)))
    adapter._ensure_loaded()
    model = adapter.model_
    n_spans = len(prompts[0].spans)

    def run_captum() -> None:
        reference = LLMAttribution(FeatureAblation(model), adapter.tokenizer_)
        with torch_threads(adapter.threads_):
            for p, t in zip(prompts, targets, strict=True):
                values = [p.span_text(s.name) for s in p.spans]
                reference.attribute(
                    TextTemplateInput("{}" * len(values), values=values),
                    target=t,
                    use_cached_outputs=False,
                )

    def run_engine() -> None:
        attribute(adapter, prompts, targets)

    # The same sequences and batches the engine scores, prepared outside the clock.
    sequences: list[list[int]] = []
    for p, t in zip(prompts, targets, strict=True):
        sequences.append(tokenizer(p.text + t)["input_ids"])
        for s in p.spans:
            sequences.append(tokenizer(p.without(s.name) + t)["input_ids"])
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    batches, start = [], 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and len(sequences[order[stop]]) * (stop - start + 1) <= 8192:
            stop += 1
        ids, mask = adapter._left_pad([sequences[i] for i in order[start:stop]])
        batches.append((ids, mask))
        start = stop

    def run_minimal() -> None:
        with torch_threads(adapter.threads_):
            for ids, mask in batches:
                adapter._forward(ids, mask, logits_to_keep=args.target_tokens + 1)

    timings: dict[str, list[float]] = {"captum": [], "engine": [], "minimal": []}
    runs = {"captum": run_captum, "engine": run_engine, "minimal": run_minimal}
    run_engine()
    run_minimal()  # warm-up
    for _ in range(args.repeats):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - t0)
    median = {name: statistics.median(values) for name, values in timings.items()}
    print(
        f"{args.prompts} prompts x {n_spans} spans, {args.target_tokens}-token targets, "
        f"{sum(p.numel() for p in model.parameters()):,} parameters, torch "
        f"{torch.__version__}, {adapter.threads_} thread(s), {len(batches)} batches of "
        f"{len(sequences)} sequences; medians of {args.repeats}:"
    )
    for name in runs:
        spread = ", ".join(f"{v:.3f}" for v in timings[name])
        print(f"  {name:8s} {median[name]:8.3f} s   ({spread})")
    speedup = median["captum"] / median["engine"]
    overhead = median["engine"] / median["minimal"]
    print(f"  captum / engine  = {speedup:6.1f}x   (target >= 10x)")
    print(f"  engine / minimal = {overhead:6.2f}x   (target <= 1.5x)")
    adapter.close()
    return 0 if speedup >= 10 and overhead <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
