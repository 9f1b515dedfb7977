"""TinyRec's own file in a model directory: the item map, provenance and held-out metrics.

A TinyRec model directory is a standard transformers directory (``config.json``,
``model.safetensors``, ``generation_config.json``, ``tokenizer.json`` and the
``PreTrainedTokenizerFast`` files) plus ``audit_sdk_tinyrec.json``. Any directory that carries
this file, TinyRec's or an ONNX export of it, can serve ``recommend``: the file maps each item
token to its catalog item and says how the recommendation prompt is written.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from audit_sdk.atomic_io import atomic_write_text
from audit_sdk.errors import AdapterError

__all__ = ["MANIFEST_NAME", "TINYREC_FORMAT_VERSION", "TinyRecManifest", "read_manifest"]

MANIFEST_NAME = "audit_sdk_tinyrec.json"
# Bump when the prompt format, the tokenizer recipe or the training tasks change: it is part
# of the cache key of trained models.
TINYREC_FORMAT_VERSION = 1


@dataclass(frozen=True)
class TinyRecManifest:
    """What ``audit_sdk_tinyrec.json`` holds.

    ``item_tokens`` maps token id -> item id (one token per item of the model's item
    vocabulary; the token's text is the item's title). ``unit`` is ``"artist"`` for
    artist-level catalogs (HetRec Last.fm) and ``"track"`` otherwise; ``history_order`` is
    ``"chronological"`` or ``"plays"`` (see :mod:`audit_sdk.tinyrec.histories`).
    """

    item_tokens: dict[int, str]
    unit: Literal["artist", "track"]
    history_order: Literal["chronological", "plays"]
    max_history: int
    dataset: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    format_version: int = TINYREC_FORMAT_VERSION

    def to_json(self) -> str:
        payload = asdict(self)
        payload["item_tokens"] = {str(k): v for k, v in sorted(self.item_tokens.items())}
        payload = {"format": "audit-sdk-tinyrec", **payload}
        return json.dumps(payload, indent=2, sort_keys=False, ensure_ascii=False) + "\n"

    def write(self, model_dir: str | Path) -> Path:
        return atomic_write_text(Path(model_dir) / MANIFEST_NAME, self.to_json())

    @classmethod
    def from_json(cls, text: str, *, source: str) -> TinyRecManifest:
        try:
            payload = json.loads(text)
            if payload.get("format") != "audit-sdk-tinyrec":
                raise ValueError("the 'format' field is not 'audit-sdk-tinyrec'")
            version = int(payload.get("format_version", 0))
            if version != TINYREC_FORMAT_VERSION:
                raise ValueError(
                    f"format_version {version} is not the supported {TINYREC_FORMAT_VERSION}; "
                    "retrain the model with this audit-sdk (audit-sdk train-tinyrec)"
                )
            return cls(
                item_tokens={int(k): str(v) for k, v in payload["item_tokens"].items()},
                unit=payload["unit"],
                history_order=payload["history_order"],
                max_history=int(payload["max_history"]),
                dataset=dict(payload.get("dataset", {})),
                training=dict(payload.get("training", {})),
                metrics=dict(payload.get("metrics", {})),
                format_version=version,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AdapterError(
                f"{source}: not a valid TinyRec item map ({exc}). Retrain the model "
                f"(audit-sdk train-tinyrec) or remove the file to use the model without "
                f"'recommend'."
            ) from None


def read_manifest(model_dir: str | Path) -> TinyRecManifest | None:
    """The manifest of a model directory, or ``None`` when the directory has none."""
    path = Path(model_dir) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AdapterError(f"{path}: cannot read the TinyRec item map ({exc}).") from None
    return TinyRecManifest.from_json(text, source=str(path))
