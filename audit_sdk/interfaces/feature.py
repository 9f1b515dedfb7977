"""The feature interface: a per-user (or per-item) quantity shared by every plugin."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Generic

from audit_sdk.interfaces._params import NoParams, ParamsT, PluginParams

if TYPE_CHECKING:
    import pandas as pd

    from audit_sdk.features.store import UserFeatures

__all__ = ["UserFeature"]


class UserFeature(ABC, Generic[ParamsT]):
    """A shared user feature computed once per audit and read by groups, detectors and
    mitigators alike (``context.features.get(name)``).

    ``compute`` receives the audit's :class:`~audit_sdk.features.UserFeatures`, which gives
    the training split, the audited users and the built-in features (genre shares,
    popularity...), and returns one value per audited user (a Series indexed by ``user_id``;
    NaN where the feature is undefined) or a users x columns DataFrame.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    Params: ClassVar[type[PluginParams]] = NoParams

    params: ParamsT

    def __init__(self, params: ParamsT | None = None) -> None:
        self.params = params if params is not None else self.Params()  # type: ignore[assignment]

    @abstractmethod
    def compute(self, features: UserFeatures) -> pd.Series | pd.DataFrame:
        """The feature for every audited user."""
