"""FAA through the onnx adapter (the TinyRec export) equals FAA through transformers."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from audit_sdk.adapters.onnx_adapter import OnnxAdapter, OnnxParams, export_onnx

from audit_sdk.attribution import attribute

from .attribution_fixtures import history_prompts, tiny_adapter, tiny_model_dir


@pytest.mark.slow  # exports the model to ONNX first: ~20 s on a busy machine
def test_onnx_attribution_equals_transformers() -> None:
    out = Path(tempfile.mkdtemp(prefix="faa-onnx-")) / "onnx"
    export_onnx(tiny_model_dir(), out)
    onnx_dir = out
    prompts, targets = history_prompts(4)
    onnx = OnnxAdapter(OnnxParams(model_dir=str(onnx_dir)))
    local = tiny_adapter()
    try:
        here = attribute(local, prompts, targets)
        there = attribute(onnx, prompts, targets, max_batch_tokens=128)
    finally:
        onnx.close()
        local.close()
    assert there.engine == "tokens"
    for a, b in zip(here.prompts, there.prompts, strict=True):
        np.testing.assert_allclose(b.full, a.full, atol=1e-4)
        np.testing.assert_allclose(b.token_attributions, a.token_attributions, atol=1e-4)
        assert a.prefix_ablated is not None and b.prefix_ablated is not None
        np.testing.assert_allclose(b.prefix_ablated, a.prefix_ablated, atol=1e-4)
