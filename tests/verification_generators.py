"""A playlist generator with planted behaviour, for the verification tests (through the
callable adapter). It reads the catalog from :data:`CATALOG` (set by the test) and answers
"Return 10 track titles ..." prompts: for a genre it lists ``GROUNDED`` catalog tracks of that
genre (numbered, "Title - Artist"), repeats the first once, and adds ``HALLUCINATED`` lines
naming no catalog track; for the genre in :data:`WORSE` it hallucinates half the list. Any
other prompt gets an empty answer."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

CATALOG: pd.DataFrame | None = None
GROUNDED, HALLUCINATED = 8, 2
WORSE = "rock"
_REQUEST = re.compile(r"request: (.+)")


def planted_playlists(prompts: Sequence[str]) -> list[str]:
    assert CATALOG is not None, "set tests.verification_generators.CATALOG first"
    genres = CATALOG["genres"].map(lambda g: g[0] if len(g) else "")
    answers = []
    for prompt in prompts:
        found = _REQUEST.search(prompt)
        if found is None:
            answers.append("")
            continue
        request = found.group(1).strip()
        genre = next(
            (g for g in sorted(set(genres), key=len, reverse=True) if g and request.startswith(g)),
            None,
        )
        pool = CATALOG[genres == genre] if genre else CATALOG
        grounded, hallucinated = (5, 5) if genre == WORSE else (GROUNDED, HALLUCINATED)
        picks = pool.iloc[:grounded]
        lines = [
            f"{i + 1}. {t} - {a}"
            for i, (t, a) in enumerate(zip(picks["title"], picks["artist"], strict=True))
        ]
        lines.append(lines[0].split(". ", 1)[1])  # a duplicate, without its number
        lines += [f"Imaginary Song {i} - Nobody Real {i}" for i in range(hallucinated)]
        answers.append("\n".join(lines))
    return answers


def unparsable(prompts: Sequence[str]) -> list[str]:
    return ["   \n\n" for _ in prompts]
