"""The shared features of one audit, computed lazily and once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING

import pandas as pd
from scipy import sparse

from audit_sdk.errors import AuditSDKError
from audit_sdk.features import listening

if TYPE_CHECKING:
    from audit_sdk.data.tables import Dataset
    from audit_sdk.interfaces.feature import UserFeature

__all__ = ["BUILTIN_FEATURES", "UserFeatures"]

# name -> what it is; the definitions live in audit_sdk.features.listening.
BUILTIN_FEATURES: dict[str, str] = {
    "activity_events": "number of training events per user",
    "activity_plays": "total training plays per user (listening volume)",
    "genre_entropy": "Shannon entropy (nats) of the user's genre shares (taste breadth)",
    "mainstreamness": "mean popularity of the distinct items a user played",
}


class UserFeatures:
    """Per-user and per-item features of an audit's training split.

    Built-in features are attributes (``genre_shares``, ``item_popularity``...); features that
    plugins register (:class:`~audit_sdk.interfaces.UserFeature`) are read with
    :meth:`get`. Each is computed on first use and kept; the object pickles with whatever was
    computed so far.
    """

    def __init__(
        self,
        train: Dataset,
        users: Sequence[str],
        *,
        extra: Mapping[str, UserFeature] | None = None,
    ) -> None:
        self.train = train
        self.users = pd.Index(list(users), name="user_id")
        self._extra = dict(extra or {})
        self._computed: dict[str, pd.Series | pd.DataFrame] = {}

    # -- the training data in the shapes features need -------------------------------------
    @property
    def interactions(self) -> pd.DataFrame:
        return self.train.interactions.frame

    @property
    def catalog(self) -> pd.DataFrame:
        return self.train.catalog.frame

    @cached_property
    def plays(self) -> sparse.csr_matrix:
        """Audited users x catalog items, summed plays."""
        return listening.user_item_plays(self.interactions, self.users, self.catalog.index)

    # -- built-in features -------------------------------------------------------------------
    @cached_property
    def item_popularity(self) -> pd.Series:
        """Share of training users who played each catalog item (0 for unseen)."""
        return listening.item_popularity(self.interactions, self.catalog.index)

    @cached_property
    def genre_shares(self) -> pd.DataFrame:
        """Users x genres, p(g | u); empty columns when the catalog has no genres."""
        levels = listening.item_level_matrix(self.catalog, "genres")
        return listening.level_shares(self.plays, levels, self.users)

    @cached_property
    def country_shares(self) -> pd.DataFrame:
        """Users x artist countries, the share of plays."""
        levels = listening.item_level_matrix(self.catalog, "country")
        return listening.level_shares(self.plays, levels, self.users)

    @cached_property
    def genre_entropy(self) -> pd.Series:
        return listening.genre_entropy(self.genre_shares)

    @cached_property
    def activity_events(self) -> pd.Series:
        return listening.activity_events(self.interactions, self.users)

    @cached_property
    def activity_plays(self) -> pd.Series:
        return listening.activity_plays(self.interactions, self.users)

    @cached_property
    def mainstreamness(self) -> pd.Series:
        return listening.mainstreamness(self.interactions, self.item_popularity, self.users)

    # -- registered features -----------------------------------------------------------------
    def names(self) -> list[str]:
        """Every feature :meth:`get` can return."""
        return sorted({*BUILTIN_FEATURES, *self._extra})

    def get(self, name: str) -> pd.Series | pd.DataFrame:
        """A feature by name: a built-in one or one a plugin registered."""
        if name in BUILTIN_FEATURES:
            value: pd.Series | pd.DataFrame = getattr(self, name)
            return value
        if name not in self._extra:
            raise AuditSDKError(
                f"no user feature named {name!r}; available: {', '.join(self.names())}."
            )
        if name not in self._computed:
            value = self._extra[name].compute(self)
            if not isinstance(value, (pd.Series, pd.DataFrame)):
                raise AuditSDKError(
                    f"feature {name!r} returned {type(value).__name__}, not a pandas Series or "
                    "DataFrame indexed by user_id"
                )
            self._computed[name] = value.reindex(self.users)
        return self._computed[name]
