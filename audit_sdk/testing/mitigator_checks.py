"""The mitigator conformance check for plugin authors (beside ``check_detector``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from audit_sdk.interfaces import GeneratorAdapter, MitigationResult, Mitigator, ProfileSampler
from audit_sdk.pipeline.detection_stage import missing_requirement
from audit_sdk.pipeline.mitigation_stage import apply_settings

if TYPE_CHECKING:
    from audit_sdk.interfaces import AuditContext

__all__ = ["check_mitigator"]


def _list_problems(recs: pd.DataFrame, context: AuditContext) -> list[str]:
    problems = []
    missing = {"user_id", "rank", "item_id", "score"} - set(recs.columns)
    if missing:
        return [f"outputs.recommendations lacks columns {sorted(missing)}"]
    unknown = set(recs["user_id"]) - set(context.users)
    if unknown:
        problems.append(f"outputs name {len(unknown)} users the audit does not have")
    if recs.duplicated(["user_id", "item_id"]).any():
        problems.append("outputs repeat an item in a user's list")
    ranks = recs.sort_values(["user_id", "rank"]).groupby("user_id")["rank"]
    expected = ranks.cumcount() + 1
    if not (recs.sort_values(["user_id", "rank"])["rank"].to_numpy() == expected.to_numpy()).all():
        problems.append("ranks are not 1, 2, ... within each user's list")
    if (recs.groupby("user_id").size() > context.k).any():
        problems.append(f"a list is longer than k={context.k}")
    return problems


def check_mitigator(mitigator: Mitigator, context: AuditContext | None = None) -> MitigationResult:
    """Run ``mitigator`` on ``context`` (default: :func:`audit_sdk.testing.make_context`) and
    check the contract:

    * it has a ``name`` and the context meets its ``requires``;
    * ``mitigate`` returns a :class:`MitigationResult` with a summary that changes something;
    * returned outputs are well-formed top-k lists of the audit's users; a returned adapter,
      profile writer or sampler is of the right kind; settings are ones a mitigator may change;
    * a second run on the same context returns the same change (seeded randomness).
    """
    if context is None:
        from audit_sdk.testing import make_context

        context = make_context()
    problems: list[str] = []
    if not getattr(mitigator, "name", None):
        problems.append("the mitigator class has no `name`")
    reason = missing_requirement(mitigator, context)
    if reason is not None:
        raise AssertionError(f"the check context cannot run {mitigator.name!r}: {reason}")
    result = mitigator.mitigate(context)
    if not isinstance(result, MitigationResult):
        raise AssertionError(f"{mitigator.name}.mitigate must return a MitigationResult")
    if not result.summary.strip():
        problems.append("empty summary")
    if not result.changes():
        problems.append("the result changes nothing (set outputs, adapter, sampler, ...)")
    if result.outputs is not None:
        if result.outputs.recommendations is None and result.outputs.profiles is None:
            problems.append("outputs carry neither recommendations nor profiles")
        if result.outputs.recommendations is not None:
            problems.extend(_list_problems(result.outputs.recommendations, context))
    for attr, kind in (("adapter", GeneratorAdapter), ("profile_writer", GeneratorAdapter)):
        value = getattr(result, attr)
        if value is not None and not isinstance(value, kind):
            problems.append(f"{attr} is a {type(value).__name__}, not a {kind.__name__}")
    if result.profile_writer is not None and not result.profile_writer.supports("generate"):
        problems.append("profile_writer cannot generate text")
    if result.sampler is not None and not isinstance(result.sampler, ProfileSampler):
        problems.append(f"sampler is a {type(result.sampler).__name__}, not a ProfileSampler")
    if result.settings:
        try:
            apply_settings(context.config, result.settings, mitigator=mitigator.name)
        except Exception as exc:
            problems.append(f"settings rejected: {exc}")
    again = mitigator.mitigate(context)
    if again.changes() != result.changes() or dict(again.settings) != dict(result.settings):
        problems.append("two runs on the same context change different things")
    elif result.outputs is not None and again.outputs is not None:
        first, second = result.outputs.recommendations, again.outputs.recommendations
        if (first is None) != (second is None) or (
            first is not None
            and second is not None
            and not first.reset_index(drop=True).equals(second.reset_index(drop=True))
        ):
            problems.append(
                "two runs on the same context return different lists: use context.rng()"
            )
    if problems:
        raise AssertionError(
            f"{mitigator.name} fails the mitigator contract:\n- " + "\n- ".join(problems)
        )
    return result
