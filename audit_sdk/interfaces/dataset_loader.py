"""The dataset loader interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Generic

from audit_sdk.interfaces._params import NoParams, ParamsT, PluginParams

if TYPE_CHECKING:
    from audit_sdk.data.tables import Dataset

__all__ = ["DatasetLoader"]


class DatasetLoader(ABC, Generic[ParamsT]):
    """Turns files (or a generator) into a validated :class:`Dataset`.

    A loader either returns a complete, validated dataset or raises
    :class:`audit_sdk.errors.DataValidationError`; nothing is half-loaded.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Params: ClassVar[type[PluginParams]] = NoParams

    params: ParamsT

    def __init__(self, params: ParamsT | None = None) -> None:
        self.params = params if params is not None else self.Params()  # type: ignore[assignment]

    @abstractmethod
    def load(self) -> Dataset:
        """Load and validate."""
