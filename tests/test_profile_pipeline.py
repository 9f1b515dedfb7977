"""The profile pipeline: windows, prompts, several generators, the cache, failures."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from audit_sdk.adapters.callable_adapter import CallableAdapter
from audit_sdk.adapters.template_profile_writer import (
    TemplateProfileWriter,
    write_template_profile,
)

from audit_sdk.errors import MissingCapabilityError
from audit_sdk.generation_cache import GenerationCache
from audit_sdk.interfaces import GenerationParams
from audit_sdk.profile_pipeline import (
    PROFILE_COLUMNS,
    generate_profiles,
    profile_prompt_table,
    sample_profile_windows,
)
from audit_sdk.profile_prompts import prompt_sha256

from .profile_fixtures import synthetic_samples, synthetic_world

_counter = itertools.count()

GENERATORS = """
import json, os

CALLS = []

def echo(prompts, params):
    CALLS.append(len(prompts))
    return [f"t={params.temperature} seed={params.seed} lines={p.count(chr(10))}" for p in prompts]

def fails_on_metal(prompts, params):
    CALLS.append(len(prompts))
    if any("metal" in p for p in prompts):
        raise RuntimeError("the model crashed on metal")
    return ["fine" for p in prompts]

def always_fails(prompts):
    CALLS.append(len(prompts))
    raise ConnectionError("endpoint unreachable")

def too_few(prompts):
    return ["only one"]
"""


@pytest.fixture
def generators_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real module on sys.path holding test generators; its name is unique per test."""
    name = f"profile_generators_{next(_counter)}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(GENERATORS), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def _callable(module: str, function: str) -> CallableAdapter:
    return CallableAdapter(CallableAdapter.Params(target=f"{module}:{function}"))


def test_windows_come_from_the_sampler_and_undated_data_has_one() -> None:
    world = synthetic_world()
    samples = sample_profile_windows(world, windows=[365, 30, 30])
    assert list(samples) == ["30d", "365d"]
    assert samples["30d"]["user_id"].nunique() <= samples["365d"]["user_id"].nunique()
    assert samples["365d"].groupby("user_id").size().max() == 15
    undated = world.replace(
        interactions=world.interactions.with_frame(
            world.interactions.frame.drop(columns="timestamp")
        )
    )
    assert list(sample_profile_windows(undated, windows=[30])) == ["all"]


def test_several_generators_in_one_run(generators_module: str) -> None:
    world, samples = synthetic_samples()
    generators = {
        "template": TemplateProfileWriter(),
        "echo": _callable(generators_module, "echo"),
    }
    seen: list[tuple[str, int, int]] = []
    profiles = generate_profiles(
        samples,
        world.catalog,
        generators,
        cache=None,
        batch_size=7,
        progress=lambda label, done, total: seen.append((label, done, total)),
    )
    assert list(profiles.columns) == list(PROFILE_COLUMNS)
    n_samples = sum(s["user_id"].nunique() for s in samples.values())
    assert len(profiles) == 2 * n_samples
    assert profiles.groupby("model").size().to_dict() == {"echo": n_samples, "template": n_samples}
    assert set(profiles["adapter"]) == {"template_writer", "callable"}
    assert profiles["error"].isna().all()
    assert not profiles["cached"].any()
    # the default sampling parameters, temperature 0.8, are recorded with every output
    assert (profiles["temperature"] == 0.8).all()
    assert (profiles["seed"] == 0).all()
    assert (profiles["max_new_tokens"] == GenerationParams().max_new_tokens).all()
    assert (profiles["prompt"].map(prompt_sha256) == profiles["prompt_sha256"]).all()

    template = profiles[profiles["model"] == "template"]
    for row in template.sample(15, random_state=1).itertuples():
        sample = samples[row.window]
        pairs = sample[sample["user_id"] == row.user_id]
        assert row.text == write_template_profile(pairs, world.catalog)
        assert "\n- " in row.prompt
    echo = profiles[profiles["model"] == "echo"]
    assert echo["text"].str.startswith("t=0.8 seed=0 lines=").all()

    finals = {label: (done, total) for label, done, total in seen}
    assert (
        finals["echo"][0]
        == finals["echo"][1]
        == profiles[profiles["model"] == "echo"]["prompt_sha256"].nunique()
    )


def test_second_run_comes_from_the_cache(generators_module: str, tmp_path: Path) -> None:
    world, samples = synthetic_samples()
    module = sys.modules.get(generators_module) or __import__(generators_module)
    params = GenerationParams(temperature=0.5, seed=11)
    with GenerationCache(tmp_path / "cache.sqlite") as cache:
        first = generate_profiles(
            samples,
            world.catalog,
            {"echo": _callable(generators_module, "echo")},
            params=params,
            cache=cache,
            batch_size=8,
        )
        calls = sum(module.CALLS)
        assert calls == first["prompt_sha256"].nunique()
        second = generate_profiles(
            samples,
            world.catalog,
            {"echo": _callable(generators_module, "echo")},
            params=params,
            cache=cache,
            batch_size=8,
        )
        assert sum(module.CALLS) == calls, "the cached run called the generator"
        assert second["cached"].all()
        assert not first["cached"].any()
        assert second["text"].tolist() == first["text"].tolist()
        # other parameters are another key: generated anew
        third = generate_profiles(
            samples,
            world.catalog,
            {"echo": _callable(generators_module, "echo")},
            params=GenerationParams(temperature=0.9, seed=11),
            cache=cache,
        )
        assert not third["cached"].any()
        assert cache.stats().rows == 2 * calls


def test_identical_prompts_are_generated_once(generators_module: str) -> None:
    world, samples = synthetic_samples()
    sample = samples["365d"]
    first_user = sample["user_id"].iloc[0]
    twin = sample[sample["user_id"] == first_user].assign(user_id="twin")
    module = __import__(generators_module)
    profiles = generate_profiles(
        {"365d": pd.concat([sample, twin], ignore_index=True)},
        world.catalog,
        {"echo": _callable(generators_module, "echo")},
    )
    assert sum(module.CALLS) == len(profiles) - 1
    by_user = profiles.set_index("user_id")["text"]
    assert by_user["twin"] == by_user[first_user]


def test_a_failing_batch_gives_error_rows_and_the_rest_goes_on(generators_module: str) -> None:
    world, samples = synthetic_samples()
    profiles = generate_profiles(
        samples,
        world.catalog,
        {"flaky": _callable(generators_module, "fails_on_metal")},
        batch_size=1,
        max_consecutive_failures=10_000,
    )
    metal = profiles["prompt"].str.contains("metal")
    assert metal.any()
    assert (~metal).any()
    assert profiles.loc[metal, "text"].isna().all()
    assert (
        profiles.loc[metal, "error"].str.contains("RuntimeError: the model crashed on metal").all()
    )
    assert (profiles.loc[~metal, "text"] == "fine").all()
    assert profiles.loc[~metal, "error"].isna().all()


def test_a_generator_that_keeps_failing_is_given_up(generators_module: str) -> None:
    world, samples = synthetic_samples()
    module = __import__(generators_module)
    profiles = generate_profiles(
        samples,
        world.catalog,
        {"down": _callable(generators_module, "always_fails")},
        batch_size=4,
        max_consecutive_failures=2,
    )
    assert module.CALLS == [4, 4]
    assert profiles["text"].isna().all()
    sent = list(profiles.drop_duplicates("prompt_sha256")["prompt_sha256"])[:8]
    tried = profiles["prompt_sha256"].isin(sent)
    message = f"callable target '{generators_module}:always_fails' (generate) raised ConnectionError: endpoint unreachable"
    assert (profiles.loc[tried, "error"] == message).all()
    skipped = profiles.loc[~tried, "error"]
    assert len(skipped) > 0
    assert skipped.str.contains(
        f"not generated: generator 'down' failed on 2 batches in a row (last error: {message})",
        regex=False,
    ).all()


def test_wrong_output_count_is_an_error_row(generators_module: str) -> None:
    world, samples = synthetic_samples()
    profiles = generate_profiles(
        {"30d": samples["30d"]},
        world.catalog,
        {"short": _callable(generators_module, "too_few")},
        batch_size=3,
    )
    assert profiles["error"].str.contains("returned 1 outputs for 3 prompts").any()


def test_an_adapter_without_generate_is_refused(generators_module: str) -> None:
    world, samples = synthetic_samples()
    recommender = CallableAdapter(
        CallableAdapter.Params(target=f"{generators_module}:echo", capabilities=["recommend"])
    )
    with pytest.raises(MissingCapabilityError, match=r"'recommender'.*generate"):
        generate_profiles(samples, world.catalog, {"recommender": recommender})


def test_custom_template_and_empty_windows(tmp_path: Path) -> None:
    world, samples = synthetic_samples()
    template = tmp_path / "short.j2"
    template.write_text("Tracks:\n{{ lines }}\nProfile:", encoding="utf-8")
    empty = samples["30d"].iloc[0:0]
    table = profile_prompt_table(
        {"none": empty, "365d": samples["365d"]}, world.catalog, template=template
    )
    assert set(table["window"]) == {"365d"}
    assert table["prompt"].str.startswith("Tracks:\n- ").all()
    profiles = generate_profiles(
        {"365d": samples["365d"]}, world.catalog, {"t": TemplateProfileWriter()}, template=template
    )
    assert profiles["error"].isna().all()
    assert generate_profiles({}, world.catalog, {"t": TemplateProfileWriter()}).empty


def test_a_generator_that_cannot_load_gives_error_rows_and_others_complete() -> None:
    world, samples = synthetic_samples()
    broken = CallableAdapter(CallableAdapter.Params(target="no_such_module_xyz:generate"))
    profiles = generate_profiles(
        samples, world.catalog, {"broken": broken, "template": TemplateProfileWriter()}
    )
    failed = profiles[profiles["model"] == "broken"]
    assert failed["text"].isna().all()
    assert (
        failed["error"]
        .str.contains(
            "could not identify its model: callable target 'no_such_module_xyz:generate': "
            "cannot import module 'no_such_module_xyz'",
            regex=False,
        )
        .all()
    )
    assert profiles[profiles["model"] == "template"]["error"].isna().all()
