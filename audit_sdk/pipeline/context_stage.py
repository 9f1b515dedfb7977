"""Stage 6, context: groups from the shared features, then the frozen :class:`AuditContext`."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from audit_sdk.config import AuditConfig
from audit_sdk.features.store import UserFeatures
from audit_sdk.interfaces import AuditContext, ModelRun, UserGroups
from audit_sdk.pipeline.data_stage import AuditData
from audit_sdk.services import AuditServices
from audit_sdk.user_groups import build_group_columns

__all__ = ["build_context", "build_groups"]


def build_groups(config: AuditConfig, data: AuditData, features: UserFeatures) -> UserGroups:
    """Group labels (attributes and derived groups), the raw user attributes, and each user's
    number of training events."""
    table, columns = build_group_columns(data.users, data.train, config.groups, features=features)
    attrs = data.train.users.frame.reindex(table.index)
    for column in attrs.columns:
        if column not in table.columns:
            table[column] = attrs[column]
    table["n_train_events"] = features.activity_events.reindex(table.index, fill_value=0)
    return UserGroups(table, tuple(columns))


def build_context(
    config: AuditConfig,
    data: AuditData,
    *,
    subject: ModelRun,
    baselines: Mapping[str, ModelRun],
    samples: pd.DataFrame | None,
    services: AuditServices,
) -> AuditContext:
    features = UserFeatures(data.train, list(data.users), extra=services.features)
    context = AuditContext(
        config=config,
        dataset=data.dataset,
        train=data.train,
        test=data.test,
        groups=build_groups(config, data, features),
        subject_run=subject,
        baseline_runs=dict(baselines),
        samples=samples,
        services=services,
    )
    # the features computed for the groups are the context's own (computed once)
    context.__dict__["features"] = features
    return context
