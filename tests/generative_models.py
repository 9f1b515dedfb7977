"""Text 'models' for tests of generated recommendations: real functions the callable adapter
imports by name."""

from __future__ import annotations

POPULAR_TITLES: list[str] = []


def list_titles(prompts: list[str]) -> list[str]:
    """Answers every prompt with a numbered list: the titles in POPULAR_TITLES, with one title
    that exists nowhere slipped in as the second line."""
    lines = [f"{i + 1}. {t}" for i, t in enumerate(POPULAR_TITLES)]
    lines.insert(1, "2. A Song That Does Not Exist")
    return ["\n".join(lines) for _ in prompts]
