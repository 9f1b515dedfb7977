from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from typing_extensions import TypeVar

__all__ = ["NoParams", "ParamsT", "PathParam", "PluginParams"]


class PluginParams(BaseModel):
    """Base class for a plugin's parameters: unknown keys are an error, not silence."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class NoParams(PluginParams):
    """A plugin without parameters."""


ParamsT = TypeVar("ParamsT", bound=PluginParams, default=PluginParams)
"""What a plugin's ``self.params`` is: ``class MyDetector(Detector[MyParams])`` types it as
``MyParams`` (an unparametrised plugin sees :class:`PluginParams`)."""


class PathParam:
    """Marks a string parameter as a file or folder path: ``Annotated[str, PathParam()]``
    (or annotate it as :class:`pathlib.Path`). The host expands ``~`` and ``$VARS`` in it and
    resolves a relative path against the config file's folder, for every plugin kind."""

    def __repr__(self) -> str:
        return "PathParam()"
