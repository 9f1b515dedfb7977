"""Playlist verification of a generating model: a prompt suite from the catalog's metadata
(plus a user's prompts), sent with the paper's template, answers read against the catalog and
every grounded list scored for consistency with its prompt.

"Verifying LLM-Driven Music Recommendation Systems" (Amazon Music, KDD 2025 LLM4ECommerce
workshop, Secs. 3-4): prompts such as "90's grunge" are sent as "Return 10 track titles with
explicit artist names" at temperature 0.7, top-p 0.9 and 128 new tokens; answers are
deduplicated, canonicalised and checked against the catalog
(:mod:`audit_sdk.verification.playlist_answers`). Per prompt:

* ``hallucination_rate``: unique lines that name no catalog track; ``duplicate_rate``;
* ``genre_consistency`` / ``era_consistency`` / ``country_consistency``: share of the grounded
  tracks with the prompt's genre, era, country (eq. 1's era test applied to an answer);
* ``constraint_adherence``: share of grounded tracks satisfying every constraint of the prompt
  (the adherence term of eq. 4);
* ``theme_consistency``: cos(v_prompt, c_answer), the prompt's embedding against the
  normalised centroid of the grounded tracks' embeddings (the cosine term of eq. 4).

A user prompt file (YAML or JSON) is a list of ``{text, constraints}``::

    - text: "90s grunge, no metal"
      constraints: ["era=1990s", "genre=grunge", "genre!=metal"]
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from audit_sdk.config_files import load_yaml_document, read_document_text
from audit_sdk.vectors import unit_rows
from audit_sdk.verification.catalog_attributes import (
    Constraint,
    VerificationInputError,
    parse_constraint,
    satisfies_all,
)
from audit_sdk.verification.playlist_answers import CatalogMatcher

__all__ = [
    "PAPER_TEMPLATE",
    "PLAYLIST_METRICS",
    "PlaylistPrompt",
    "load_prompts",
    "prompt_suite",
    "render_prompt",
    "score_answers",
]

PAPER_TEMPLATE = (
    "Return {n} track titles with explicit artist names for this request: {request}\n"
    "Write one track per line as: Title - Artist\n"
)
PLAYLIST_METRICS = (
    "hallucination_rate",
    "duplicate_rate",
    "genre_consistency",
    "era_consistency",
    "country_consistency",
    "constraint_adherence",
    "theme_consistency",
)


@dataclass(frozen=True)
class PlaylistPrompt:
    """A request, its constraints, and the genre, era and country it asks for (for the
    per-group breakdown)."""

    request: str
    constraints: tuple[Constraint, ...]
    source: str = "catalog"

    def wants(self, attribute: str) -> str | None:
        for constraint in self.constraints:
            if constraint.attribute == attribute and constraint.op == "=":
                return constraint.value
        return None


def render_prompt(prompt: PlaylistPrompt, *, template: str = PAPER_TEMPLATE, n: int = 10) -> str:
    return template.format(n=n, request=prompt.request)


def prompt_suite(
    attrs: pd.DataFrame, *, top_values: int = 4, min_items: int = 10, max_prompts: int = 24
) -> list[PlaylistPrompt]:
    """Requests for the catalog's most common genres, eras and countries, alone, paired, and
    with a negative constraint ("music from the 1990s, no rock"); only requests that at
    least ``min_items`` catalog items satisfy."""
    genres = attrs["genre"].value_counts().index[:top_values].astype(str).tolist()
    eras = attrs["era"].value_counts().index[:top_values].astype(str).tolist()
    countries = attrs["country"].value_counts().index[:top_values].astype(str).tolist()
    kinds: list[list[tuple[str, list[str]]]] = [
        [(f"{g} music", [f"genre={g}"]) for g in genres],
        [(f"music from the {e}", [f"era={e}"]) for e in eras],
        [(f"music from {c}", [f"country={c}"]) for c in countries],
        [(f"{g} music from the {e}", [f"genre={g}", f"era={e}"]) for g in genres for e in eras[:2]],
        [
            (f"{g} music from {c}", [f"genre={g}", f"country={c}"])
            for g in genres
            for c in countries[:2]
        ],
        [
            (f"music from the {e}, no {genres[0]}", [f"era={e}", f"genre!={genres[0]}"])
            for e in eras[:2]
            if len(genres) >= 2
        ],
    ]
    prompts = []
    # round-robin over the kinds, so that max_prompts keeps some of each
    for entry in itertools.chain.from_iterable(itertools.zip_longest(*kinds)):
        if entry is None:
            continue
        request, constraints = entry
        parsed = tuple(
            parse_constraint(c, where=f"catalog prompt {request!r}") for c in constraints
        )
        if satisfies_all(attrs, parsed).sum() >= min_items:
            prompts.append(PlaylistPrompt(request, parsed))
    return prompts[:max_prompts]


def load_prompts(path: str | Path) -> list[PlaylistPrompt]:
    """A user's prompts (format in the module docstring); an unknown constraint is a
    :class:`VerificationInputError` naming the file and entry."""
    file = Path(path)
    text = read_document_text(file, error=VerificationInputError, what="playlist prompt")
    source = str(file)
    data = (
        json.loads(text)
        if file.suffix.lower() == ".json"
        else load_yaml_document(text, source=source, error=VerificationInputError)
    )
    if not isinstance(data, list) or not data:
        raise VerificationInputError(f"{source}: expected a list of {{text, constraints}} entries")
    prompts = []
    for index, entry in enumerate(data):
        where = f"{source}: entry {index + 1}"
        if not isinstance(entry, dict) or not str(entry.get("text", "")).strip():
            raise VerificationInputError(f"{where} needs a 'text'")
        constraints = entry.get("constraints", []) or []
        if not isinstance(constraints, list):
            raise VerificationInputError(f"{where}: constraints must be a list of strings")
        parsed = tuple(parse_constraint(c, where=where) for c in constraints)
        prompts.append(PlaylistPrompt(str(entry["text"]), parsed, source="user"))
    return prompts


def score_answers(
    prompts: Sequence[PlaylistPrompt],
    answers: Sequence[str | None],
    attrs: pd.DataFrame,
    matcher: CatalogMatcher,
    *,
    embed: Callable[[Sequence[str]], np.ndarray] | None = None,
    item_texts: pd.Series | None = None,
) -> pd.DataFrame:
    """One row per prompt: ``request, source, genre, era, country, status`` (``scored``, or
    why not: ``not generated``, ``no parsable line``, ``nothing grounded``), the counts, and
    the :data:`PLAYLIST_METRICS` (NaN where a metric does not apply)."""
    rows = []
    grounded: list[tuple[int, tuple[str, ...]]] = []
    for index, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
        row: dict[str, object] = {
            "request": prompt.request,
            "source": prompt.source,
            "constraints": "; ".join(map(str, prompt.constraints)),
            "genre": prompt.wants("genre") or "any",
            "era": prompt.wants("era") or "any",
            "country": prompt.wants("country") or "any",
        }
        row.update(dict.fromkeys(PLAYLIST_METRICS, np.nan))
        if answer is None:
            rows.append({**row, "status": "not generated", "n_lines": 0, "n_grounded": 0})
            continue
        reading = matcher.read(answer)
        row.update(n_lines=reading.n_lines, n_grounded=len(reading.items))
        if reading.n_lines == 0:
            rows.append({**row, "status": "no parsable line"})
            continue
        row["hallucination_rate"] = reading.hallucination_rate
        row["duplicate_rate"] = reading.duplicate_rate
        row["misattributed"] = reading.n_misattributed
        if not reading.items:
            rows.append({**row, "status": "nothing grounded"})
            continue
        items = attrs.loc[list(reading.items)]
        for attribute in ("genre", "era", "country"):
            wanted = prompt.wants(attribute)
            if wanted is not None:
                mask = satisfies_all(items, [Constraint(attribute, "=", wanted)])
                row[f"{attribute}_consistency"] = float(mask.mean())
        if prompt.constraints:
            row["constraint_adherence"] = float(satisfies_all(items, prompt.constraints).mean())
        grounded.append((index, reading.items))
        rows.append({**row, "status": "scored"})
    table = pd.DataFrame(rows)
    if embed is not None and item_texts is not None and grounded:
        needed = list(dict.fromkeys(i for _, items in grounded for i in items))
        vectors = unit_rows(embed([str(item_texts.get(i, i)) for i in needed]))
        position = {item: r for r, item in enumerate(needed)}
        requests = unit_rows(embed([prompts[i].request for i, _ in grounded]))
        for (index, items), request in zip(grounded, requests, strict=True):
            centroid = unit_rows(vectors[[position[i] for i in items]].mean(axis=0))
            table.loc[index, "theme_consistency"] = float(request @ centroid)
    return table
