"""Playlist verification: answers parsed, deduplicated, canonicalised and matched to the
catalog; planted grounding, duplicates and a genre verified worse are recovered with CIs;
bad input gives a skipped finding with the reason."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from audit_sdk.plugins.detectors.verification_playlists import PlaylistVerificationDetector

import tests.verification_generators as generators
from audit_sdk.testing import check_detector, make_context
from audit_sdk.verification.catalog_attributes import (
    VerificationInputError,
    canonical_name,
    catalog_attributes,
)
from audit_sdk.verification.playlist_answers import CatalogMatcher, split_line
from audit_sdk.verification.playlist_verification import load_prompts


def test_canonical_names_and_line_splitting() -> None:
    assert canonical_name("The Beatles") == canonical_name("beatles")
    assert canonical_name("Beyoncé feat. Jay-Z") == "beyonce"
    assert canonical_name("Simon & Garfunkel") == "simon and garfunkel"
    assert split_line('"Teen Spirit" — Nirvana') == ("Teen Spirit", "Nirvana")
    assert split_line("Just A Title") == ("Just A Title", None)


def test_matcher_counts_duplicates_hallucinations_and_misattributions() -> None:
    catalog = pd.DataFrame(
        {
            "title": ["Blue", "Red", "Green"],
            "artist": ["The Painters", "Björk", "Moss"],
            "genres": [("pop",), ("rock",), ("jazz",)],
        },
        index=pd.Index(["t1", "t2", "t3"], name="item_id"),
    )
    matcher = CatalogMatcher(catalog_attributes(catalog))
    answer = "1. Blue - Painters\n2) blue — the painters\n- Red by Bjork\nRed - Someone Else\nNope - None\n"
    reading = matcher.read(answer)
    assert reading.items == ("t1", "t2")
    assert (reading.n_lines, reading.n_duplicates) == (5, 1)
    assert (reading.n_hallucinated, reading.n_misattributed) == (2, 1)
    assert reading.hallucination_rate == pytest.approx(2 / 4)


def test_artist_level_catalog_matches_either_part() -> None:
    catalog = pd.DataFrame(
        {"title": ["Nirvana", "Air"], "artist": ["Nirvana", "Air"]}, index=["1", "2"]
    )
    reading = CatalogMatcher(catalog_attributes(catalog)).read("Lithium - Nirvana\nAir\nZ - Q")
    assert reading.items == ("1", "2") and reading.n_hallucinated == 1


def _context(target: str):  # type: ignore[no-untyped-def]
    context = make_context(
        n_users=60,
        models={
            "llm": {
                "adapter": "callable",
                "params": {"target": f"tests.verification_generators:{target}"},
            }
        },
    )
    generators.CATALOG = context.dataset.catalog.frame
    return context


def test_planted_grounding_and_a_genre_verified_worse(tmp_path: Path) -> None:
    context = _context("planted_playlists")
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text("- text: sad songs\n  constraints: ['mood=sad']\n", encoding="utf-8")
    detector = PlaylistVerificationDetector(
        PlaylistVerificationDetector.Params(generator_role="llm", prompts=prompts)
    )
    findings = {(f.metric, f.group_by): f for f in check_detector(detector, context)}
    skipped = findings[("playlist:user_prompts", None)]
    assert (
        skipped.status == "skipped" and "unknown constraint attribute 'mood'" in skipped.explanation
    )
    duplicates = findings[("playlist:duplicate_rate", "prompt genre")]
    # every answer repeats one line: 1 of 11 lines
    assert duplicates.estimate == pytest.approx(1 / 11)
    genre = findings[("playlist:genre_consistency", "prompt genre")]
    assert genre.estimate == pytest.approx(1.0)
    hallucination = findings[("playlist:hallucination_rate", "prompt genre")]
    rows = {g.group: g for g in hallucination.groups}
    assert rows[generators.WORSE].estimate == pytest.approx(0.5)
    others = [g for name, g in rows.items() if name not in {generators.WORSE, "any"}]
    assert others and all(g.estimate == pytest.approx(0.2) for g in others)
    assert hallucination.ci_low <= hallucination.estimate <= hallucination.ci_high
    assert ("playlist:constraint_adherence", "prompt era") in findings
    theme = findings[("playlist:theme_consistency", "prompt genre")]
    assert theme.status != "skipped" and -1 <= theme.estimate <= 1


def test_answers_with_no_parsable_line_are_a_skipped_finding_with_the_reason() -> None:
    context = _context("unparsable")
    detector = PlaylistVerificationDetector(
        PlaylistVerificationDetector.Params(generator_role="llm")
    )
    findings = detector.detect(context)
    assert findings and all(f.status == "skipped" for f in findings)
    assert "no parsable line" in findings[0].explanation


def test_no_generator_is_skipped() -> None:
    findings = PlaylistVerificationDetector().detect(make_context(n_users=60))
    assert all(f.status == "skipped" and "no generating model" in f.explanation for f in findings)


def test_prompt_file_errors_name_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('[{"text": "x", "constraints": ["genre=rock"]}, {"constraints": []}]')
    with pytest.raises(VerificationInputError, match="entry 2 needs a 'text'"):
        load_prompts(path)
