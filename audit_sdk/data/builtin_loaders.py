"""The built-in dataset loaders, registered through the same hook a third-party plugin uses
(entry point ``datasets`` in the ``audit_sdk`` group)."""

from __future__ import annotations

from audit_sdk.data.hetrec_loader import HetRecLastfmLoader
from audit_sdk.data.synthetic_world import SyntheticWorldLoader
from audit_sdk.data.tabular_loader import TabularLoader
from audit_sdk.hookspecs import RegisterDatasetLoader, hookimpl

__all__ = ["audit_sdk_register_dataset_loaders"]


@hookimpl
def audit_sdk_register_dataset_loaders(register: RegisterDatasetLoader) -> None:
    register(SyntheticWorldLoader)
    register(TabularLoader)
    register(HetRecLastfmLoader)
