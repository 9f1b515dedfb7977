"""Audit any Python function: ``target = "package.module:function"``.

Calling conventions (the adapter checks what comes back):

``generate``
    *batch*: ``fn(prompts: list[str], params: GenerationParams) -> list[str]`` (one output per
    prompt, in order); or *single*: ``fn(prompt: str, params: GenerationParams) -> str``, called
    once per prompt. ``params`` may be left out of the signature. ``call: "auto"`` picks the
    convention from the first parameter's name (``prompts`` -> batch, ``prompt`` -> single) or
    its annotation (``str`` -> single, a list or sequence -> batch).
``recommend``
    ``fn(user_ids: list[str], k: int) -> DataFrame`` with columns ``user_id, rank, item_id``
    (``score`` optional), or a mapping ``user_id -> [item_id, ...]`` best first.
``score``
    ``fn(prompts, continuations) -> list[TokenScores]``.
``tokenize``
    ``fn(texts) -> list[Tokenization]``.
``embed``
    ``fn(texts) -> array of shape (len(texts), dim)``.

With one capability, ``target`` names the function. With several, it names an object (a
module, class instance or namespace) with one method per capability, named after it
(``generate``, ``recommend``...).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from audit_sdk.errors import AdapterError
from audit_sdk.hookspecs import RegisterAdapter, hookimpl
from audit_sdk.interfaces._params import PluginParams
from audit_sdk.interfaces.adapter import (
    Capability,
    GenerationParams,
    GeneratorAdapter,
    Tokenization,
    TokenScores,
)

__all__ = ["CallableAdapter", "resolve_target"]

_ALL: tuple[Capability, ...] = get_args(Capability)


def resolve_target(target: str) -> Any:
    """Import ``package.module:attribute`` (the attribute may be dotted), with clear errors."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise AdapterError(f"callable target {target!r} must look like 'package.module:function'.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AdapterError(
            f"callable target {target!r}: cannot import module {module_name!r} "
            f"({type(exc).__name__}: {exc}). Check that it is installed or on PYTHONPATH."
        ) from exc
    except Exception as exc:
        raise AdapterError(
            f"callable target {target!r}: importing module {module_name!r} raised "
            f"{type(exc).__name__}: {exc}."
        ) from exc
    obj: Any = module
    walked = module_name
    for part in attribute.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise AdapterError(
                f"callable target {target!r}: {walked!r} has no attribute {part!r}.{hint}"
            )
        obj = getattr(obj, part)
        walked = f"{walked}.{part}" if walked != module_name else f"{module_name}:{part}"
    return obj


def _generate_only() -> list[Capability]:
    return ["generate"]


class CallableParams(PluginParams):
    target: str = Field(description="'package.module:function' (or an object, see the docs)")
    capabilities: list[Capability] = Field(
        default_factory=_generate_only, description="what the target provides"
    )
    call: Literal["auto", "batch", "single"] = Field(
        "auto", description="generate's calling convention: a list of prompts, or one prompt"
    )

    @field_validator("target")
    @classmethod
    def _target_shape(cls, value: str) -> str:
        module, sep, attribute = value.partition(":")
        if not sep or not module.strip() or not attribute.strip():
            raise ValueError("must look like 'package.module:function'")
        return value

    @field_validator("capabilities")
    @classmethod
    def _some_capability(cls, value: list[Capability]) -> list[Capability]:
        if not value:
            raise ValueError("list at least one capability")
        return sorted(set(value), key=_ALL.index)


class CallableAdapter(GeneratorAdapter):
    """A Python function (or object) as the system under audit."""

    name = "callable"
    description = "A Python callable ('package.module:function') as the subject."
    # The class declares everything a target may provide; an instance supports what its
    # params list (see ``supports``).
    capabilities: ClassVar[frozenset[Capability]] = frozenset(_ALL)
    Params = CallableParams

    def __init__(self, params: PluginParams | None = None) -> None:
        super().__init__(params)
        assert isinstance(self.params, CallableParams)
        # An instance attribute, since it depends on the configuration.
        setattr(self, "capabilities", frozenset(self.params.capabilities))  # noqa: B010
        self._functions: dict[Capability, Callable[..., Any]] | None = None

    @property
    def _params(self) -> CallableParams:
        assert isinstance(self.params, CallableParams)
        return self.params

    def supports(self, capability: Capability) -> bool:
        return capability in self._params.capabilities

    # -- resolution -------------------------------------------------------------------------
    def _resolve(self) -> dict[Capability, Callable[..., Any]]:
        if self._functions is not None:
            return self._functions
        params = self._params
        target = resolve_target(params.target)
        functions: dict[Capability, Callable[..., Any]] = {}
        if len(params.capabilities) == 1 and callable(target) and not inspect.isclass(target):
            functions[params.capabilities[0]] = target
        else:
            for capability in params.capabilities:
                method = getattr(target, capability, None)
                if not callable(method):
                    raise AdapterError(
                        f"callable target {params.target!r} lists capabilities "
                        f"{', '.join(params.capabilities)}, so it must be an object with a "
                        f"method named {capability!r}; it has none. With one capability, "
                        f"target may name the function itself."
                    )
                functions[capability] = method
        self._functions = functions
        return functions

    def _function(self, capability: Capability) -> Callable[..., Any]:
        if not self.supports(capability):
            raise self._missing(capability)
        return self._resolve()[capability]

    def _call(self, capability: Capability, *args: Any, **kwargs: Any) -> Any:
        function = self._function(capability)
        try:
            return function(*args, **kwargs)
        except AdapterError:
            raise
        except Exception as exc:
            raise AdapterError(
                f"callable target {self._params.target!r} ({capability}) raised "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def _wrong(self, capability: str, message: str) -> AdapterError:
        return AdapterError(f"callable target {self._params.target!r} ({capability}): {message}")

    # -- identity ---------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """The target and a hash of the source file that defines it, so editing the function
        invalidates cached generations."""
        params = self._params
        functions = self._resolve()
        digest = hashlib.sha256()
        for function in functions.values():
            try:
                source = inspect.getsourcefile(function)
            except TypeError:
                source = None
            if source and Path(source).is_file():
                digest.update(Path(source).read_bytes())
        caps = ",".join(params.capabilities)
        return f"callable:{params.target}[{caps}]:{digest.hexdigest()[:16]}"

    def describe(self) -> dict[str, Any]:
        params = self._params
        return {
            "adapter": self.name,
            "model": params.target,
            "capabilities": list(params.capabilities),
        }

    # -- generate ---------------------------------------------------------------------------
    def _generate_convention(self, function: Callable[..., Any]) -> tuple[str, bool]:
        """(``"batch"`` or ``"single"``, whether to pass params)."""
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            return (self._params.call if self._params.call != "auto" else "batch"), True
        positional = [
            p
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        var_positional = any(p.kind == p.VAR_POSITIONAL for p in signature.parameters.values())
        takes_params = (
            len(positional) >= 2
            or var_positional
            or "params" in signature.parameters
            or any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
        )
        call = self._params.call
        if call == "auto":
            if not positional:
                call = "batch"
            else:
                first = positional[0]
                annotation = first.annotation
                text = (
                    annotation
                    if isinstance(annotation, str)
                    else getattr(annotation, "__name__", str(annotation))
                )
                if first.name == "prompt" or text == "str":
                    call = "single"
                elif first.name == "prompts" or any(
                    word in str(text) for word in ("list", "List", "Sequence", "Iterable")
                ):
                    call = "batch"
                else:
                    raise AdapterError(
                        f"callable target {self._params.target!r}: cannot tell whether it "
                        f"takes a list of prompts or one prompt (first parameter "
                        f"{first.name!r}). Name it 'prompts' or 'prompt', or set "
                        f"params.call to 'batch' or 'single'."
                    )
        return call, takes_params

    def generate(self, prompts: Sequence[str], *, params: GenerationParams) -> list[str]:
        function = self._function("generate")
        call, takes_params = self._generate_convention(function)
        extra = (params,) if takes_params else ()
        if call == "single":
            outputs = []
            for index, prompt in enumerate(prompts):
                output = self._call("generate", prompt, *extra)
                if not isinstance(output, str):
                    raise self._wrong(
                        "generate",
                        f"returned {type(output).__name__} for prompt {index + 1}; a "
                        f"single-prompt function must return str.",
                    )
                outputs.append(output)
            return outputs
        result = self._call("generate", list(prompts), *extra)
        if isinstance(result, str) or not isinstance(result, Sequence):
            raise self._wrong(
                "generate",
                f"returned {type(result).__name__}; a batch function must return a list of "
                f"str, one per prompt (or set params.call='single').",
            )
        if len(result) != len(prompts):
            raise self._wrong(
                "generate", f"returned {len(result)} outputs for {len(prompts)} prompts."
            )
        for index, output in enumerate(result):
            if not isinstance(output, str):
                raise self._wrong(
                    "generate",
                    f"output {index + 1} is {type(output).__name__}, not str.",
                )
        return list(result)

    # -- recommend --------------------------------------------------------------------------
    def recommend(self, user_ids: Sequence[str], *, k: int) -> pd.DataFrame:
        result = self._call("recommend", list(user_ids), k)
        if isinstance(result, Mapping):
            rows = [
                (str(user), rank, str(item), float(-rank))
                for user, items in result.items()
                for rank, item in enumerate(list(items)[:k], start=1)
            ]
            return pd.DataFrame(rows, columns=["user_id", "rank", "item_id", "score"])
        if not isinstance(result, pd.DataFrame):
            raise self._wrong(
                "recommend",
                f"returned {type(result).__name__}; return a DataFrame (user_id, rank, "
                f"item_id, score) or a mapping user_id -> list of item ids.",
            )
        missing = [c for c in ("user_id", "rank", "item_id") if c not in result.columns]
        if missing:
            raise self._wrong(
                "recommend",
                f"the returned DataFrame lacks column(s) {', '.join(missing)} "
                f"(has: {', '.join(map(str, result.columns))}).",
            )
        frame = result.copy()
        if "score" not in frame:
            frame["score"] = -frame["rank"].astype(float)
        frame["user_id"] = frame["user_id"].astype(str)
        frame["item_id"] = frame["item_id"].astype(str)
        frame = frame[frame["rank"] <= k]
        return frame[["user_id", "rank", "item_id", "score"]].reset_index(drop=True)

    # -- score, tokenize, embed -------------------------------------------------------------
    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[TokenScores]:
        result = self._call("score", list(prompts), list(continuations))
        if not isinstance(result, Sequence) or len(result) != len(prompts):
            raise self._wrong("score", f"return a list of {len(prompts)} TokenScores.")
        if not all(isinstance(r, TokenScores) for r in result):
            raise self._wrong("score", "every element must be audit_sdk TokenScores.")
        return list(result)

    def tokenize(self, texts: Sequence[str]) -> list[Tokenization]:
        result = self._call("tokenize", list(texts))
        if not isinstance(result, Sequence) or len(result) != len(texts):
            raise self._wrong("tokenize", f"return a list of {len(texts)} Tokenization.")
        if not all(isinstance(r, Tokenization) for r in result):
            raise self._wrong("tokenize", "every element must be audit_sdk Tokenization.")
        return list(result)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        result = self._call("embed", list(texts))
        try:
            array = np.asarray(result, dtype=float)
        except (TypeError, ValueError) as exc:
            raise self._wrong("embed", f"returned something not numeric ({exc}).") from exc
        if array.ndim != 2 or array.shape[0] != len(texts):
            raise self._wrong(
                "embed", f"returned shape {array.shape}; expected ({len(texts)}, dim)."
            )
        return array


@hookimpl
def audit_sdk_register_adapters(register: RegisterAdapter) -> None:
    register(CallableAdapter)
