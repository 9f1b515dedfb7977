"""Named prompt spans: which characters of a prompt are the task description, each history
item, the candidates, the profile text, the answer prefix.

A :class:`PromptTemplate` is a format string with named fields (``"{task}{history}"``);
filling it (:meth:`PromptTemplate.fill`) gives a :class:`SpannedPrompt`: the text and, for
every field, a :class:`Span` with its character range and its role in the attribution
aggregate (``auxiliary``: words about the task; ``interaction``: the user's own history;
``other``: reported, counted in neither). A field whose value is a sequence (a history) gives
one span per item, named ``history[0]``, ``history[1]``, ... with its ``position`` in the
sequence, so attribution can be read by history position. Spans map to token positions
through the adapter's tokenizer offsets (:mod:`audit_sdk.attribution.token_positions`).
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from audit_sdk.errors import AuditSDKError

__all__ = [
    "DEFAULT_ROLES",
    "AttributionInputError",
    "PromptTemplate",
    "Span",
    "SpanRole",
    "SpannedPrompt",
]

SpanRole = Literal["auxiliary", "interaction", "other"]
"""How a span counts in the auxiliary share: task words and the answer prefix are
``auxiliary``, the user's history ``interaction`` (arXiv 2510.10978), anything else ``other``."""

DEFAULT_ROLES: Mapping[str, SpanRole] = {
    "task": "auxiliary",
    "instructions": "auxiliary",
    "answer_prefix": "auxiliary",
    "history": "interaction",
    "profile": "interaction",
    "candidates": "other",
}
"""Roles of the SDK's usual field names; a template may give any field any role."""


class AttributionInputError(AuditSDKError):
    """A prompt, template, span or target that attribution cannot use; the message names
    the prompt and the span."""


@dataclass(frozen=True)
class Span:
    """Characters ``[start, end)`` of a prompt that form one ablatable unit.

    ``field`` is the template field it came from (``history`` for ``history[3]``);
    ``position`` its index within a sequence field (None for a single value)."""

    name: str
    start: int
    end: int
    role: SpanRole
    field: str
    position: int | None = None


@dataclass(frozen=True)
class SpannedPrompt:
    """A prompt's text with its named spans (non-overlapping, in text order).

    ``prompt_id`` names the prompt in errors and reports; ``group`` is the user group it
    belongs to (attribution is also reported per group), or None."""

    text: str
    spans: tuple[Span, ...]
    prompt_id: str = "prompt"
    group: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        previous_end = 0
        for span in self.spans:
            where = f"prompt {self.prompt_id!r}, span {span.name!r}"
            if span.name in seen:
                raise AttributionInputError(f"{where}: two spans have this name; rename one.")
            seen.add(span.name)
            if not 0 <= span.start <= span.end <= len(self.text):
                raise AttributionInputError(
                    f"{where}: characters [{span.start}, {span.end}) are outside the prompt "
                    f"({len(self.text)} characters)."
                )
            if span.start < previous_end:
                raise AttributionInputError(
                    f"{where}: overlaps the span before it; spans must be disjoint and in "
                    f"text order."
                )
            previous_end = span.end

    def span(self, name: str) -> Span:
        for span in self.spans:
            if span.name == name:
                return span
        known = ", ".join(s.name for s in self.spans) or "none"
        raise AttributionInputError(
            f"prompt {self.prompt_id!r} has no span {name!r} (its spans: {known})."
        )

    def span_text(self, name: str) -> str:
        span = self.span(name)
        return self.text[span.start : span.end]

    def merged(self, field_name: str) -> SpannedPrompt:
        """The same prompt with the spans of one field (``history[0..n]``) made one span
        named ``field_name``, from the first one's start to the last one's end: ablating it
        removes the whole field at once (e.g. the prompt with its history removed)."""
        inside = [s for s in self.spans if s.field == field_name]
        if not inside:
            raise AttributionInputError(
                f"prompt {self.prompt_id!r} has no span of field {field_name!r} (its fields: "
                f"{', '.join(dict.fromkeys(s.field for s in self.spans)) or 'none'})."
            )
        first, last = inside[0], inside[-1]
        between = [s for s in self.spans if first.start <= s.start and s.end <= last.end]
        if len(between) != len(inside):
            raise AttributionInputError(
                f"prompt {self.prompt_id!r}: the spans of field {field_name!r} are not "
                f"contiguous, so they cannot be merged into one span."
            )
        whole = Span(field_name, first.start, last.end, first.role, field_name)
        kept = [s for s in self.spans if s.field != field_name]
        spans = sorted([*kept, whole], key=lambda s: s.start)
        return SpannedPrompt(self.text, tuple(spans), self.prompt_id, self.group, self.metadata)

    def without(self, name: str, *, baseline: str = "") -> str:
        """The prompt's text with span ``name`` replaced by ``baseline`` (removed when empty):
        the text an adapter that scores text (``score``) is given for that ablation."""
        span = self.span(name)
        return self.text[: span.start] + baseline + self.text[span.end :]


@dataclass(frozen=True)
class PromptTemplate:
    """A format string with named fields, each a span of the filled prompt.

    ``roles`` gives each field its role (defaults: :data:`DEFAULT_ROLES`; a field in neither
    is an error, so a typo cannot silently count as ``other``). Text between fields belongs to
    no span and is never ablated. Example::

        PromptTemplate("{task}Listening history:\\n{history}", roles={"task": "auxiliary"})
        .fill({"task": "Recommend the next artist.\\n", "history": ["Muse\\n", "Blur\\n"]})
    """

    template: str
    roles: Mapping[str, SpanRole] = field(default_factory=dict)
    name: str = "template"

    def fields(self) -> list[str]:
        try:
            parsed = list(string.Formatter().parse(self.template))
        except ValueError as exc:
            raise AttributionInputError(
                f"template {self.name!r} is not a valid format string: {exc}."
            ) from None
        names: list[str] = []
        for _, field_name, spec, conversion in parsed:
            if field_name is None:
                continue
            if not field_name.isidentifier() or spec or conversion:
                raise AttributionInputError(
                    f"template {self.name!r}: field {{{field_name}}} must be a plain name "
                    f"(letters, digits, underscores; no format spec or conversion)."
                )
            if field_name in names:
                raise AttributionInputError(
                    f"template {self.name!r}: field {{{field_name}}} appears twice; each "
                    f"span appears once."
                )
            names.append(field_name)
        return names

    def role_of(self, field_name: str) -> SpanRole:
        if field_name in self.roles:
            return self.roles[field_name]
        if field_name in DEFAULT_ROLES:
            return DEFAULT_ROLES[field_name]
        raise AttributionInputError(
            f"template {self.name!r}: field {{{field_name}}} has no role; pass "
            f"roles={{{field_name!r}: 'auxiliary' | 'interaction' | 'other'}}."
        )

    def fill(
        self,
        values: Mapping[str, str | Sequence[str]],
        *,
        prompt_id: str = "prompt",
        group: str | None = None,
    ) -> SpannedPrompt:
        """The prompt for ``values`` (one per field; a sequence gives one span per item)."""
        names = self.fields()
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise AttributionInputError(
                f"prompt {prompt_id!r}: template {self.name!r} has no span "
                f"{', '.join(map(repr, unknown))} (its fields: {', '.join(names) or 'none'})."
            )
        missing = [n for n in names if n not in values]
        if missing:
            raise AttributionInputError(
                f"prompt {prompt_id!r}: template {self.name!r} needs a value for "
                f"{', '.join(map(repr, missing))}."
            )
        text: list[str] = []
        spans: list[Span] = []
        cursor = 0
        for literal, field_name, _, _ in string.Formatter().parse(self.template):
            text.append(literal)
            cursor += len(literal)
            if field_name is None:
                continue
            role = self.role_of(field_name)
            value = values[field_name]
            if isinstance(value, str):
                spans.append(Span(field_name, cursor, cursor + len(value), role, field_name))
                text.append(value)
                cursor += len(value)
                continue
            for position, item in enumerate(value):
                if not isinstance(item, str):
                    raise AttributionInputError(
                        f"prompt {prompt_id!r}: span {field_name}[{position}] is a "
                        f"{type(item).__name__}, not text."
                    )
                name = f"{field_name}[{position}]"
                spans.append(Span(name, cursor, cursor + len(item), role, field_name, position))
                text.append(item)
                cursor += len(item)
        return SpannedPrompt("".join(text), tuple(spans), prompt_id=prompt_id, group=group)
