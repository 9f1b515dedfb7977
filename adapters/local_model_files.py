"""Local model directories: checks with clear errors, content fingerprints, and the item map.

Shared by the ``huggingface``, ``onnx`` and ``tinyrec`` adapters. Nothing here downloads:
directories are read with ``local_files_only=True`` and ``HF_HUB_OFFLINE=1``.

A TinyRec model directory is a standard transformers directory (``config.json``,
``model.safetensors``, ``generation_config.json``, ``tokenizer.json`` and the
``PreTrainedTokenizerFast`` files) plus ``audit_sdk_tinyrec.json``, the item map
(:class:`TinyRecManifest`). Any directory that carries this file, TinyRec's or an ONNX export
of it, can serve ``recommend``: the file maps each item token to its catalog item and says how
the recommendation prompt is written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from audit_sdk.atomic_io import atomic_write_text
from audit_sdk.errors import AdapterError
from audit_sdk.transformers_support import offline, quiet_transformers

__all__ = [
    "MANIFEST_NAME",
    "TINYREC_FORMAT_VERSION",
    "TOKENIZER_FILES",
    "TinyRecManifest",
    "check_causal_lm_config",
    "check_model_directory",
    "check_tokenizer_files",
    "directory_fingerprint",
    "load_tokenizer",
    "offline",
    "quiet_transformers",
    "read_manifest",
    "read_model_config",
]

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "tokenizer.model",
    "added_tokens.json",
    "chat_template.jinja",
)
_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


def check_model_directory(model_dir: str | Path, *, adapter: str) -> Path:
    """The directory as a path, or an :class:`AdapterError` that says what is missing."""
    path = Path(model_dir).expanduser()
    if not path.exists():
        raise AdapterError(
            f"adapter {adapter!r}: model directory {str(path)!r} does not exist. Set "
            f"params.model_dir to a folder holding config.json, the weights and the tokenizer "
            f"(as written by save_pretrained, `audit-sdk train-tinyrec` or "
            f"`audit-sdk export-onnx`)."
        )
    if not path.is_dir():
        raise AdapterError(
            f"adapter {adapter!r}: {str(path)!r} is a file, not a model directory; set "
            f"params.model_dir to the folder that contains it."
        )
    if not (path / "config.json").is_file():
        raise AdapterError(
            f"adapter {adapter!r}: {str(path)!r} has no config.json, so it is not a "
            f"transformers model directory. Save the model with model.save_pretrained(dir) "
            f"(or point model_dir at the folder that has config.json)."
        )
    return path


def read_model_config(path: Path, *, adapter: str) -> dict[str, Any]:
    config_path = path / "config.json"
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterError(
            f"adapter {adapter!r}: {config_path} is not a readable JSON config ({exc})."
        ) from None
    if not isinstance(data, dict):
        raise AdapterError(f"adapter {adapter!r}: {config_path} does not hold a JSON object.")
    return data


def _causal_lm_classes() -> set[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    names: set[str] = set()
    for value in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values():
        names.update([value] if isinstance(value, str) else list(value))
    return names


def check_causal_lm_config(config: dict[str, Any], path: Path, *, adapter: str) -> str:
    """The architecture name, or an error when the directory is not a causal LM.

    A config's ``architectures`` must name a causal-LM class transformers knows (e.g.
    ``GPT2LMHeadModel``, ``LlamaForCausalLM``); without ``architectures`` its ``model_type``
    must have one."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    architectures = [str(a) for a in (config.get("architectures") or [])]
    model_type = str(config.get("model_type", ""))
    if architectures:
        known = _causal_lm_classes()
        for name in architectures:
            if name in known or name.endswith(_CAUSAL_SUFFIXES):
                return name
        raise AdapterError(
            f"adapter {adapter!r}: {path} holds a {', '.join(architectures)} "
            f"(model_type {model_type!r}), which is not a causal language model. The adapter "
            f"needs a text-generating decoder saved with an AutoModelForCausalLM class (names "
            f"ending in ForCausalLM or LMHeadModel)."
        )
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return str(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[model_type])
    raise AdapterError(
        f"adapter {adapter!r}: {path}/config.json has no 'architectures' and model_type "
        f"{model_type or '(missing)'!r} has no causal-LM class in this transformers version."
    )


def check_tokenizer_files(path: Path, *, adapter: str) -> None:
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise AdapterError(
            f"adapter {adapter!r}: {path} has no tokenizer (none of tokenizer.json, "
            f"tokenizer_config.json, vocab.json, tokenizer.model). Save it beside the model: "
            f"tokenizer.save_pretrained({str(path)!r})."
        )


def load_tokenizer(path: Path, *, adapter: str) -> Any:
    """The directory's tokenizer with left padding and a pad token."""
    offline()
    check_tokenizer_files(path, adapter=adapter)
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:
        raise AdapterError(
            f"adapter {adapter!r}: cannot load the tokenizer in {path}: {type(exc).__name__}: {exc}"
        ) from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise AdapterError(
                f"adapter {adapter!r}: the tokenizer in {path} has neither a pad nor an end-of-"
                f"text token, so prompts cannot be batched; set tokenizer.pad_token and save it."
            )
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def directory_fingerprint(path: Path, names: list[str]) -> str:
    """sha256 over (file name, file sha256) of the given files that exist, in name order."""
    digest = hashlib.sha256()
    for name in sorted(set(names)):
        file = path / name
        if file.is_file():
            digest.update(f"{name}\0{_file_sha256(file)}\0".encode())
    return digest.hexdigest()


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
    ``"chronological"`` or ``"plays"`` (see :mod:`audit_sdk.user_histories`).
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
