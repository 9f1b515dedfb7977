"""The ``tinyrec`` adapter: the embedded white-box LLM recommender, trained on first use.

With ``model_dir`` it serves that TinyRec directory (as the ``huggingface`` adapter would).
Without it, ``fit(train)`` looks up the TinyRec trained on exactly this training data (same
fingerprint), size and seed in the user's cache directory (``$AUDIT_SDK_CACHE_DIR`` or
``platformdirs.user_cache_dir("audit-sdk")``), and trains and caches it first if there is none
(a demo-sized model takes about a minute on two cores; the same seed gives the same
weights on any machine). ``audit-sdk demo`` relies on this. The plugin also adds the
``audit-sdk train-tinyrec`` command (:mod:`audit_sdk.adapters.tinyrec.commands`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from audit_sdk.errors import AdapterError
from audit_sdk.hookspecs import RegisterAdapter, RegisterCommand, hookimpl
from audit_sdk.interfaces import Capability, PluginParams
from audit_sdk.interfaces._params import PathParam

from .huggingface_adapter import Device, DType, HuggingFaceAdapter
from .local_model_files import check_model_directory

__all__ = ["TinyRecAdapter", "TinyRecParams"]

logger = logging.getLogger(__name__)


class TinyRecParams(PluginParams):
    model_dir: Annotated[str, PathParam()] | None = Field(
        None, description="a trained TinyRec directory; default: the cached one for the data"
    )
    size: Literal["demo", "full"] = Field("demo", description="model size to train or load")
    seed: int = Field(0, description="training seed (part of the cache key)")
    train_if_missing: bool = Field(
        True, description="train and cache a TinyRec when none is cached for the data"
    )
    device: Device = "auto"
    batch_size: int = Field(16, ge=1)
    dtype: DType = "auto"
    max_prompt_tokens: int | None = Field(None, ge=1)
    threads: int | None = Field(None, ge=1)


class TinyRecAdapter(HuggingFaceAdapter):
    """TinyRec, trained on the audit's training data and cached."""

    name = "tinyrec"
    description = (
        "TinyRec: the embedded white-box LLM recommender (trained and cached on first use)."
    )
    Params: ClassVar[type[PluginParams]] = TinyRecParams

    def _model_dir(self) -> Path:
        params = self.params
        assert isinstance(params, TinyRecParams)
        if params.model_dir:
            return check_model_directory(params.model_dir, adapter=self.name)
        resolved = getattr(self, "resolved_dir_", None)
        if resolved is None:
            raise AdapterError(
                "adapter 'tinyrec': no model yet. Call fit(train) first (it loads or trains "
                "the TinyRec for the training data), or set params.model_dir."
            )
        return Path(resolved)

    def supports(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def fit(self, train: Any) -> None:
        params = self.params
        assert isinstance(params, TinyRecParams)
        if not params.model_dir:
            from audit_sdk.adapters.tinyrec.model_cache import ensure_tinyrec

            resolved = ensure_tinyrec(
                train,
                size=params.size,
                seed=params.seed,
                train_if_missing=params.train_if_missing,
                progress=lambda message: logger.info("TinyRec: %s", message),
            )
            if resolved != getattr(self, "resolved_dir_", None):
                self.close()
                self.__dict__.pop("fingerprint_", None)
                self.resolved_dir_ = resolved
        super().fit(train)

    def fingerprint(self) -> str:
        params = self.params
        assert isinstance(params, TinyRecParams)
        if not params.model_dir and getattr(self, "resolved_dir_", None) is None:
            return f"tinyrec:{params.size}:seed{params.seed}:not-trained-yet"
        return super().fingerprint()


@hookimpl
def audit_sdk_register_adapters(register: RegisterAdapter) -> None:
    register(TinyRecAdapter)


@hookimpl
def audit_sdk_register_commands(register: RegisterCommand) -> None:
    from .tinyrec.commands import TrainTinyRecCommand

    register(TrainTinyRecCommand)
