"""The profile prompt template and the deterministic template profile writer."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from audit_sdk.adapters import template_profile_writer as writer_module
from audit_sdk.adapters.template_profile_writer import (
    TemplateProfileWriter,
    write_template_profile,
    write_template_profiles,
)

from audit_sdk.errors import AdapterError, ConfigError, DataValidationError
from audit_sdk.interfaces import GenerationParams
from audit_sdk.plugin_host import PluginHost, PluginSettings
from audit_sdk.profile_prompts import (
    parse_profile_pairs,
    profile_pairs_from_sample,
    prompt_sha256,
    render_profile_prompt,
    render_profile_prompts,
)

from .profile_fixtures import hand_catalog, hand_sample, synthetic_samples

SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


def _sentences(text: str) -> int:
    return len(SENTENCE_END.findall(text))


def test_default_prompt_lists_every_pair_with_its_metadata() -> None:
    prompt = render_profile_prompt(hand_sample([12, 5, 8, 3, 20, 1]), hand_catalog())
    assert "- Radiohead — Creep [alternative rock, rock; GB; 1992; 12 plays]" in prompt
    assert "- Black Sabbath — Paranoid [heavy metal; GB; 1970; 20 plays]" in prompt
    # unknown metadata is said, not left blank; one play is singular
    assert "- Nobody — Untitled [unknown; unknown; unknown; 1 play]" in prompt
    assert prompt.endswith("Profile:")
    assert "{{" not in prompt
    assert "{#" not in prompt
    assert prompt_sha256(prompt) == prompt_sha256(prompt)
    assert len(prompt_sha256(prompt)) == 64


def test_prompt_lines_parse_back_to_the_joined_pairs() -> None:
    world, samples = synthetic_samples()
    for sample in samples.values():
        for _, pairs in list(sample.groupby("user_id"))[:20]:
            prompt = render_profile_prompt(pairs, world.catalog)
            assert parse_profile_pairs(prompt) == profile_pairs_from_sample(pairs, world.catalog)


def test_many_users_at_once_match_one_at_a_time() -> None:
    world, samples = synthetic_samples()
    sample = samples["365d"]
    together = render_profile_prompts(sample, world.catalog)
    assert list(together) == list(dict.fromkeys(sample["user_id"]))
    for user_id, pairs in list(sample.groupby("user_id"))[:10]:
        assert together[user_id] == render_profile_prompt(pairs, world.catalog)


def test_row_order_does_not_matter_position_does() -> None:
    sample = hand_sample([12, 5, 8, 3, 20, 1])
    shuffled = sample.sample(frac=1.0, random_state=4)
    catalog = hand_catalog()
    assert render_profile_prompt(shuffled, catalog) == render_profile_prompt(sample, catalog)
    assert write_template_profile(shuffled, catalog) == write_template_profile(sample, catalog)


def test_profile_names_genres_by_plays_artists_eras_and_countries() -> None:
    text = write_template_profile(hand_sample([12, 5, 8, 3, 20, 1]), hand_catalog())
    # heavy metal has the most plays (20 of 49, one genre), then alternative rock
    # (12/2 + 5 = 11), then electronic (8/2 + 3 = 7); rock (6) and art pop (4) fall short
    genres = re.search(r"(heavy metal), (alternative rock) and (electronic)", text)
    assert genres is not None, text
    assert "art pop" not in text
    assert "Black Sabbath, Radiohead and Björk" in text  # 20 > 17 > 11 plays
    assert "1990s and 1970s" in text  # 28 plays vs 20
    assert "the UK" in text
    assert "Iceland" not in text
    assert 2 <= _sentences(text) <= 4


def test_one_heavily_played_genre_dominates_the_profile() -> None:
    # Paranoid has far more plays than the five other tracks together
    text = write_template_profile(hand_sample([1, 1, 1, 1, 100, 1]), hand_catalog())
    first = text.split(". ")[0].lower()
    assert "heavy metal" in first
    assert any(word in first for word in ("devoted", "dominates", "above all")), first
    assert "Black Sabbath" in text.split(". ")[1]


def test_missing_metadata_gives_a_shorter_profile_not_an_error() -> None:
    sample = hand_sample([1, 1, 1, 1, 1, 9]).iloc[[5]]  # only the track with no metadata
    text = write_template_profile(sample, hand_catalog())
    assert "Nobody" in text
    assert 2 <= _sentences(text) <= 4
    assert "unknown" not in text


def test_profiles_are_reproducible_varied_and_two_to_four_sentences() -> None:
    world, samples = synthetic_samples()
    texts = []
    for _, pairs in samples["365d"].groupby("user_id"):
        text = write_template_profile(pairs, world.catalog)
        assert text == write_template_profile(pairs, world.catalog)
        assert 2 <= _sentences(text) <= 4, text
        texts.append(text)
    openings = {" ".join(t.split()[:2]) for t in texts}
    assert len(openings) >= 3, openings  # several phrasings in use
    assert len(set(texts)) == len(texts)


def test_many_users_at_once_write_the_same_profiles() -> None:
    world, samples = synthetic_samples()
    sample = samples["30d"]
    together = write_template_profiles(sample, world.catalog)
    assert len(together) == sample["user_id"].nunique()
    for user_id, pairs in sample.groupby("user_id"):
        assert together[user_id] == write_template_profile(pairs, world.catalog)


def test_adapter_reads_the_prompt_and_writes_the_same_profile() -> None:
    world, samples = synthetic_samples()
    adapter = TemplateProfileWriter()
    for window, sample in samples.items():
        prompts = render_profile_prompts(sample, world.catalog)
        outputs = adapter.generate(list(prompts.values()), params=GenerationParams(seed=7))
        for (user_id, _), text in zip(prompts.items(), outputs, strict=True):
            pairs = sample[sample["user_id"] == user_id]
            assert text == write_template_profile(pairs, world.catalog), (window, user_id)


def test_adapter_rejects_a_prompt_without_pair_lines() -> None:
    with pytest.raises(AdapterError, match=r"prompt 2 of 2 .*no listening lines.*pair\.line"):
        TemplateProfileWriter().generate(
            [render_profile_prompt(hand_sample([1] * 6), hand_catalog()), "Describe me."],
            params=GenerationParams(),
        )


def test_artist_level_items_render_without_a_track_title() -> None:
    catalog = hand_catalog()
    frame = catalog.frame.copy()
    frame["title"] = frame["artist"]
    artist_catalog = type(catalog)(frame)
    sample = hand_sample([3, 2, 1, 1, 1, 1])
    sample["title"] = sample["artist"]
    prompt = render_profile_prompt(sample, artist_catalog)
    assert "- Radiohead [alternative rock, rock; GB; 1992; 3 plays]" in prompt
    assert parse_profile_pairs(prompt) == profile_pairs_from_sample(sample, artist_catalog)


def test_text_that_would_break_the_line_format_is_cleaned() -> None:
    catalog = hand_catalog()
    frame = catalog.frame.copy()
    frame.loc["t1", "genres"] = ("rock; live", "post-[rock]")
    sample = hand_sample([1] * 6)
    sample.loc[0, "artist"] = "AC — DC\nLive"
    sample.loc[0, "title"] = "Track — Remix"
    prompt = render_profile_prompt(sample, type(catalog)(frame))
    pairs = parse_profile_pairs(prompt)
    assert len(pairs) == 6
    assert pairs[0].artist == "AC - DC Live"
    assert pairs[0].title == "Track — Remix"
    assert pairs[0].genres == ("rock live", "post- rock")


def test_custom_template_keeps_working_with_pair_lines(tmp_path) -> None:
    path = tmp_path / "mine.j2"
    path.write_text(
        "Listener {{ user_id }} ({{ n_pairs }} picks):\n{{ lines }}\nTheir favourite: "
        "{{ pairs[0].artist }}, {{ pairs[0].genres | join('/') }}.",
        encoding="utf-8",
    )
    sample = hand_sample([12, 5, 8, 3, 20, 1])
    prompt = render_profile_prompt(sample, hand_catalog(), template=path)
    assert prompt.startswith("Listener u1 (6 picks):")
    assert "Their favourite: Radiohead, alternative rock/rock." in prompt
    [output] = TemplateProfileWriter().generate([prompt], params=GenerationParams())
    assert output == write_template_profile(sample, hand_catalog())


def test_template_errors_name_the_file_and_the_problem(tmp_path) -> None:
    sample = hand_sample([1] * 6)
    catalog = hand_catalog()
    with pytest.raises(ConfigError, match="no such profile prompt template"):
        render_profile_prompt(sample, catalog, template=tmp_path / "absent.j2")
    unknown = tmp_path / "unknown.j2"
    unknown.write_text("{{ pairs }} {{ listener_age }}", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown\.j2.*unknown variable.*listener_age"):
        render_profile_prompt(sample, catalog, template=unknown)
    broken = tmp_path / "broken.j2"
    broken.write_text("line one\n{% for p in pairs %}\n{{ p.line }}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.j2, line \d+: not a valid jinja2 template"):
        render_profile_prompt(sample, catalog, template=broken)


def test_template_output_is_not_html_escaped(tmp_path) -> None:
    catalog = hand_catalog()
    sample = hand_sample([1] * 6)
    sample.loc[0, "artist"] = "<script>Tom & Jerry</script>"
    prompt = render_profile_prompt(sample, catalog)
    assert "<script>Tom & Jerry</script>" in prompt


def test_sample_errors_name_the_row_and_column() -> None:
    sample = hand_sample([1] * 6)
    sample.loc[3, "item_id"] = "t999"
    with pytest.raises(DataValidationError, match=r"row 4, column 'item_id'.*t999"):
        render_profile_prompt(sample, hand_catalog())
    with pytest.raises(DataValidationError, match=r"lacks column.*plays"):
        render_profile_prompt(hand_sample([1] * 6).drop(columns="plays"), hand_catalog())
    two_users = pd.concat([hand_sample([1] * 6), hand_sample([2] * 6, user_id="u2")])
    with pytest.raises(DataValidationError, match="holds 2 users"):
        render_profile_prompt(two_users, hand_catalog())


def test_adapter_registers_through_the_hook_and_identifies_itself() -> None:
    host = PluginHost(PluginSettings(autoload=False))
    host.register_plugin(writer_module, name="template_profile_writer")
    registration = host.get("adapter", "template_writer")
    assert registration.cls is TemplateProfileWriter
    adapter = TemplateProfileWriter()
    assert adapter.supports("generate")
    assert not adapter.supports("score")
    assert adapter.fingerprint() == f"template_writer:v{writer_module.TEMPLATE_WRITER_VERSION}"
    assert adapter.describe()["adapter"] == "template_writer"
