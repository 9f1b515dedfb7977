"""Profiles per second: the huggingface adapter vs the onnx adapter, on TinyRec.

Both adapters write taste profiles for the same two-step-sample profile prompts (the default
template, default synthetic world), batched, with the same sampling parameters; each timing
is the median of several repeats (different seeds) after a warm-up batch. Prints both rates
and their ratio.

    python benchmarks/bench_profile_throughput.py [--model-dir DIR] [--prompts 64]
        [--repeats 3] [--batch-size 16] [--threads 2] [--max-new-tokens 96]

Without ``--model-dir`` it uses the demo TinyRec cached for the default synthetic world
(training it first if needed, about a minute) and exports it to ONNX in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _prompts(n: int) -> list[str]:
    from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world
    from audit_sdk.profile_pipeline import profile_prompt_table, sample_profile_windows
    from audit_sdk.splitting import holdout_split

    world = generate_world(SyntheticWorldParams())
    train = holdout_split(world, seed=0).train
    table = profile_prompt_table(sample_profile_windows(train, windows=None), train.catalog)
    return table["prompt"].tolist()[:n]


def _default_model() -> Path:
    from audit_sdk.adapters.tinyrec.model_cache import ensure_tinyrec

    from audit_sdk.data.synthetic_world import SyntheticWorldParams, generate_world
    from audit_sdk.splitting import holdout_split

    train = holdout_split(generate_world(SyntheticWorldParams()), seed=0).train
    return ensure_tinyrec(train, size="demo", seed=0, progress=lambda m: print(f"  {m}"))


def _rate(adapter, prompts: list[str], *, repeats: int, max_new_tokens: int) -> tuple[float, float]:
    from audit_sdk.interfaces import GenerationParams

    adapter.generate(prompts[: adapter.params.batch_size], params=GenerationParams(seed=999))
    rates, tokens = [], []
    for seed in range(repeats):
        params = GenerationParams(temperature=0.8, max_new_tokens=max_new_tokens, seed=seed)
        started = time.perf_counter()
        texts = adapter.generate(prompts, params=params)
        elapsed = time.perf_counter() - started
        rates.append(len(prompts) / elapsed)
        tokens.append(sum(len(ids) for ids in adapter.tokenizer_(texts)["input_ids"]) / elapsed)
    return statistics.median(rates), statistics.median(tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    args = parser.parse_args()

    import onnxruntime
    import torch
    from audit_sdk.adapters.huggingface_adapter import HuggingFaceAdapter, HuggingFaceParams
    from audit_sdk.adapters.onnx_adapter import OnnxAdapter, OnnxParams, export_onnx

    model_dir = args.model_dir or _default_model()
    prompts = _prompts(args.prompts)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        onnx_dir = export_onnx(model_dir, Path(tmp) / "onnx").parent
        export_s = time.perf_counter() - started
        hf = HuggingFaceAdapter(
            HuggingFaceParams(
                model_dir=str(model_dir),
                device="cpu",
                batch_size=args.batch_size,
                threads=args.threads,
            )
        )
        onnx = OnnxAdapter(
            OnnxParams(model_dir=str(onnx_dir), batch_size=args.batch_size, threads=args.threads)
        )
        hf_rate, hf_tokens = _rate(
            hf, prompts, repeats=args.repeats, max_new_tokens=args.max_new_tokens
        )
        onnx_rate, onnx_tokens = _rate(
            onnx, prompts, repeats=args.repeats, max_new_tokens=args.max_new_tokens
        )
    print(
        f"TinyRec at {model_dir} ({hf.describe()['parameters']:,} parameters), "
        f"{len(prompts)} profile prompts, batch {args.batch_size}, {args.threads} threads, "
        f"max_new_tokens {args.max_new_tokens}, temperature 0.8, median of {args.repeats}"
    )
    print(
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"ONNX export took {export_s:.1f} s"
    )
    print(f"{'adapter':<12} {'profiles/s':>11} {'tokens/s':>10}")
    print(f"{'huggingface':<12} {hf_rate:>11.2f} {hf_tokens:>10.1f}")
    print(f"{'onnx':<12} {onnx_rate:>11.2f} {onnx_tokens:>10.1f}")
    print(f"ratio onnx / huggingface: {onnx_rate / hf_rate:.2f}x")


if __name__ == "__main__":
    main()
