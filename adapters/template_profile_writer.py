"""The deterministic template profile writer: the baseline every profile generator is compared to.

It writes 2 to 4 sentences about a user's sampled (artist, track) pairs: the main genres
(weighted by plays), the favourite artists, the release decades and the artists' countries.
The wording varies between a few phrasings, chosen from a hash of the input, so profiles read
differently from user to user but the same input always gives the same text. TinyRec learns
to write profiles by imitating it.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, ClassVar

import pandas as pd

from audit_sdk.data.tables import Catalog
from audit_sdk.errors import AdapterError
from audit_sdk.hookspecs import RegisterAdapter, hookimpl
from audit_sdk.interfaces.adapter import Capability, GenerationParams, GeneratorAdapter
from audit_sdk.profile_prompts import (
    ProfilePair,
    format_pair_line,
    parse_profile_pairs,
    profile_pairs_by_user,
    profile_pairs_from_sample,
    prompt_sha256,
)

__all__ = [
    "TEMPLATE_WRITER_VERSION",
    "TemplateProfileWriter",
    "write_profile_from_pairs",
    "write_template_profile",
    "write_template_profiles",
]

# Bump when the wording changes: it is part of the adapter's fingerprint, hence of cache keys.
TEMPLATE_WRITER_VERSION = "1"

MAX_GENRES = 3
MIN_GENRE_SHARE = 0.10
DOMINANT_GENRE_SHARE = 0.60
MAX_ARTISTS = 3
MAX_DECADES = 2
MAX_COUNTRIES = 2
MIN_ERA_COUNTRY_SHARE = 0.25

_COUNTRY_NAMES = {
    "AR": "Argentina",
    "AT": "Austria",
    "AU": "Australia",
    "BE": "Belgium",
    "BR": "Brazil",
    "CA": "Canada",
    "CH": "Switzerland",
    "CN": "China",
    "CO": "Colombia",
    "CU": "Cuba",
    "DE": "Germany",
    "DK": "Denmark",
    "ES": "Spain",
    "FI": "Finland",
    "FR": "France",
    "GB": "the UK",
    "GH": "Ghana",
    "GR": "Greece",
    "IE": "Ireland",
    "IN": "India",
    "IS": "Iceland",
    "IT": "Italy",
    "JM": "Jamaica",
    "JP": "Japan",
    "KR": "South Korea",
    "MX": "Mexico",
    "NG": "Nigeria",
    "NL": "the Netherlands",
    "NO": "Norway",
    "NZ": "New Zealand",
    "PL": "Poland",
    "PR": "Puerto Rico",
    "PT": "Portugal",
    "RU": "Russia",
    "SE": "Sweden",
    "TR": "Turkey",
    "UK": "the UK",
    "US": "the US",
    "ZA": "South Africa",
}


def _join(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def _capitalize(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def _ranked(weights: dict[str, float], order: dict[str, int]) -> list[tuple[str, float]]:
    total = sum(weights.values())
    if total <= 0:
        return []
    return sorted(
        ((key, value / total) for key, value in weights.items()),
        key=lambda kv: (-kv[1], order[kv[0]], kv[0]),
    )


def _top(ranked: list[tuple[str, float]], *, limit: int, min_share: float) -> list[str]:
    chosen = [key for key, share in ranked[:limit] if share >= min_share]
    return chosen or [key for key, _ in ranked[:1]]


def _country_name(country: str) -> str:
    return _COUNTRY_NAMES.get(country.upper(), country) if len(country) == 2 else country


def write_profile_from_pairs(pairs: Sequence[ProfilePair]) -> str:
    """The template profile of already-joined pairs (see :func:`write_template_profile`)."""
    if not pairs:
        return "This listener has no listening history in this sample."
    total = sum(p.plays for p in pairs)
    weight = [p.plays / total for p in pairs] if total > 0 else [1.0 / len(pairs)] * len(pairs)

    genre_w: dict[str, float] = defaultdict(float)
    artist_w: dict[str, float] = defaultdict(float)
    decade_w: dict[str, float] = defaultdict(float)
    country_w: dict[str, float] = defaultdict(float)
    first_seen: dict[str, int] = {}
    for position, (pair, w) in enumerate(zip(pairs, weight, strict=True)):
        for genre in pair.genres:
            genre_w[genre] += w / len(pair.genres)
            first_seen.setdefault(genre, position)
        artist_w[pair.artist] += w
        first_seen.setdefault(pair.artist, position)
        if pair.release_year is not None:
            decade = f"{pair.release_year // 10 * 10}s"
            decade_w[decade] += w
            first_seen.setdefault(decade, position)
        if pair.country is not None:
            country = _country_name(pair.country)
            country_w[country] += w
            first_seen.setdefault(country, position)

    canonical = "\n".join(format_pair_line(pair) for pair in pairs)
    choice = hashlib.sha256(canonical.encode("utf-8")).digest()

    def pick(slot: int, options: Sequence[str]) -> str:
        return options[choice[slot] % len(options)]

    sentences: list[str] = []
    genres_ranked = _ranked(genre_w, first_seen)
    if not genres_ranked:
        sentences.append(
            pick(
                0,
                (
                    "Their genres are hard to pin down from this sample.",
                    "The sample says little about the genres they like.",
                ),
            )
        )
    else:
        genres = _top(genres_ranked, limit=MAX_GENRES, min_share=MIN_GENRE_SHARE)
        if genres_ranked[0][1] >= DOMINANT_GENRE_SHARE:
            rest = f", with some {_join(genres[1:])}" if len(genres) > 1 else ""
            sentences.append(
                pick(
                    0,
                    (
                        f"This listener is devoted to {genres[0]}{rest}.",
                        f"{genres[0]} dominates this listener's taste{rest}.",
                        f"Above all, this listener plays {genres[0]}{rest}.",
                    ),
                )
            )
        else:
            listed = _join(genres)
            sentences.append(
                pick(
                    0,
                    (
                        f"This listener's taste centres on {listed}.",
                        f"Their listening mixes {listed}.",
                        f"This listener mostly plays {listed}.",
                    ),
                )
            )

    artists = [a for a, _ in _ranked(artist_w, first_seen)[:MAX_ARTISTS]]
    if len(artist_w) == 1:
        sentences.append(f"They listen almost only to {artists[0]}.")
    else:
        listed = _join(artists)
        sentences.append(
            pick(
                1,
                (
                    f"Favourite artists include {listed}.",
                    f"{listed} get the most plays.",
                    f"They return most often to {listed}.",
                ),
            )
        )

    decades_ranked = _ranked(decade_w, first_seen)
    countries_ranked = _ranked(country_w, first_seen)
    decades = _join(_top(decades_ranked, limit=MAX_DECADES, min_share=MIN_ERA_COUNTRY_SHARE))
    countries = _join(_top(countries_ranked, limit=MAX_COUNTRIES, min_share=MIN_ERA_COUNTRY_SHARE))
    if decades and countries:
        if choice[2] % 2 == 0:
            sentences.append(
                pick(
                    3,
                    (
                        f"Most of the music dates from the {decades} and comes from {countries}.",
                        f"Their music is mostly from the {decades}, by artists from {countries}.",
                    ),
                )
            )
        else:
            sentences.append(
                pick(
                    3,
                    (
                        f"Most of it was released in the {decades}.",
                        f"They favour music from the {decades}.",
                    ),
                )
            )
            sentences.append(
                pick(
                    4,
                    (
                        f"The artists come mainly from {countries}.",
                        f"Most of the artists are from {countries}.",
                    ),
                )
            )
    elif decades:
        sentences.append(
            pick(
                3,
                (
                    f"Most of the music dates from the {decades}.",
                    f"They favour music from the {decades}.",
                ),
            )
        )
    elif countries:
        sentences.append(
            pick(
                4,
                (
                    f"The artists come mainly from {countries}.",
                    f"Most of the artists are from {countries}.",
                ),
            )
        )
    return " ".join(_capitalize(sentence) for sentence in sentences)


def write_template_profile(pairs: pd.DataFrame, catalog: Catalog) -> str:
    """A 2-4 sentence taste profile of one user's two-step sample.

    :param pairs: one user's sample (``user_id, position, artist, item_id, title, plays``).
    :param catalog: gives each item's genres, country and release year.

    Genres are weighted by plays, an item's plays shared equally among its genres (as in
    :meth:`Catalog.genre_matrix`); the sentence names up to three genres holding at least 10%
    of the weight, the three most played artists, and the one or two decades and countries
    holding at least a quarter of the plays. Pure and deterministic.
    """
    return write_profile_from_pairs(profile_pairs_from_sample(pairs, catalog))


def write_template_profiles(sample: pd.DataFrame, catalog: Catalog) -> dict[Any, str]:
    """:func:`write_template_profile` for every user of a two-step sample (one catalog join),
    keyed by user id: the fast path for writing many training targets."""
    return {
        user: write_profile_from_pairs(pairs)
        for user, pairs in profile_pairs_by_user(sample, catalog).items()
    }


class TemplateProfileWriter(GeneratorAdapter):
    """Serves :func:`write_template_profile` as a text generator.

    Its prompts are profile prompts (:func:`audit_sdk.profile_prompts.render_profile_prompt`):
    it reads the pair lines back and writes the template profile; sampling parameters are
    ignored (the baseline is deterministic).
    """

    name = "template_writer"
    description = "Deterministic template taste profiles (the profile baseline)."
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"generate"})

    def fingerprint(self) -> str:
        return f"template_writer:v{TEMPLATE_WRITER_VERSION}"

    def describe(self) -> dict[str, Any]:
        return {
            "adapter": self.name,
            "model": "template profile writer",
            "version": TEMPLATE_WRITER_VERSION,
        }

    def generate(self, prompts: Sequence[str], *, params: GenerationParams) -> list[str]:
        outputs = []
        for index, prompt in enumerate(prompts):
            pairs = parse_profile_pairs(prompt)
            if not pairs:
                raise AdapterError(
                    f"template_writer: prompt {index + 1} of {len(prompts)} "
                    f"(sha256 {prompt_sha256(prompt)[:12]}) has no listening lines like "
                    f"'- Artist — Track [genres; country; year; N plays]'. It reads profile "
                    f"prompts only; a custom template must keep one {{{{ pair.line }}}} per pair."
                )
            outputs.append(write_profile_from_pairs(pairs))
        return outputs


@hookimpl
def audit_sdk_register_adapters(register: RegisterAdapter) -> None:
    register(TemplateProfileWriter)
