"""Shared features: one definition per concept (popularity, genre and country shares, taste
breadth, activity, mainstreamness), read by groups, detectors and mitigators alike."""

from __future__ import annotations

from audit_sdk.features.store import BUILTIN_FEATURES, UserFeatures

__all__ = ["BUILTIN_FEATURES", "UserFeatures"]
