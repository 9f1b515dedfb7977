"""The sampling-policy interface: which items each user's taste profile is written from."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import pandas as pd

    from audit_sdk.config import SamplingConfig
    from audit_sdk.data.tables import Dataset

__all__ = ["ProfileSampler"]


class ProfileSampler(ABC):
    """Chooses, per time window, the (artist, track) sample each profile prompt shows.

    The default is the seed study's two-step sampler
    (:class:`audit_sdk.profile_pipeline.TwoStepSampler`); a mitigator can return another one
    (``MitigationResult(sampler=...)``), e.g. larger, more diverse samples for generalists.
    """

    name: ClassVar[str] = "sampler"

    @abstractmethod
    def sample(self, train: Dataset, settings: SamplingConfig) -> dict[str, pd.DataFrame]:
        """Window label -> sample with columns ``user_id, position, artist, item_id, title,
        plays`` for the users of ``train`` (one window, ``"all"``, without timestamps)."""

    def describe(self) -> dict[str, Any]:
        """What the report says about this policy (part of the mitigated fingerprint)."""
        return {"sampler": self.name}
