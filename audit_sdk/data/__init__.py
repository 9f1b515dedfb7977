"""The data layer: tables, loaders, validation, and the synthetic music-streaming world."""

from __future__ import annotations

from audit_sdk.data.tables import Catalog, Dataset, Interactions, Users

__all__ = ["Catalog", "Dataset", "Interactions", "Users"]
