"""Intrinsic verification tests (KDD 2025 LLM4ECommerce, eqs. 1-4) on a synthetic catalog with
planted eras, genres and countries: an oracle embedding that reads them ranks above real
embeddings, which rank above a random one, with separated CIs; bad test sets are clear."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from audit_sdk.adapters.embedding_adapter import EmbeddingAdapter, EmbeddingParams
from audit_sdk.plugins.detectors._profile_utility import item_texts
from audit_sdk.plugins.detectors.verification_embeddings import EmbeddingVerificationDetector

from audit_sdk.data.synthetic_world import generate_world
from audit_sdk.data.synthetic_world_params import SyntheticWorldParams
from audit_sdk.errors import AdapterError
from audit_sdk.testing import check_detector, make_context
from audit_sdk.verification.catalog_attributes import (
    VerificationInputError,
    catalog_attributes,
    parse_constraint,
)
from audit_sdk.verification.intrinsic_tests import (
    TESTS,
    analogy_hits,
    era_consistency,
    score_embedding,
    verification_table,
)
from audit_sdk.verification.test_sets import load_suite, suite_from_catalog
from tests.verification_embedders import OracleEmbedding, RandomEmbedding

SMALL = {"max_per_group": 6, "max_analogies": 12, "max_themes": 8, "pool_size": 40}


def _catalog(seed: int) -> pd.DataFrame:
    return generate_world(SyntheticWorldParams(n_users=30, n_artists=120, seed=seed)).catalog.frame


def _table(catalog: pd.DataFrame, models: dict, seed: int, sizes: dict = SMALL) -> pd.DataFrame:
    attrs = catalog_attributes(catalog)
    suite = suite_from_catalog(attrs, rng=np.random.default_rng(seed), **sizes)
    texts = item_texts(catalog)
    results = [
        score_embedding(suite, m.embed, texts, attrs, model=name, seed=seed, n_resamples=300)
        for name, m in models.items()
    ]
    return verification_table(results)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_oracle_ranks_above_wordllama_above_random(seed: int) -> None:
    table = _table(
        _catalog(seed),
        {
            "oracle": OracleEmbedding(),
            "wordllama": EmbeddingAdapter(EmbeddingParams(backend="wordllama")),
            "random": RandomEmbedding(),
        },
        seed,
    )
    overall = table["overall"]
    assert overall["oracle"] > overall["wordllama"] > overall["random"]
    # separated intervals, and the random embedding's covers zero
    assert table.at["oracle", "overall_ci_low"] > table.at["wordllama", "overall_ci_high"]
    assert table.at["wordllama", "overall_ci_low"] > table.at["random", "overall_ci_high"]
    assert table.at["random", "overall_ci_low"] < 0.02 < table.at["oracle", "overall_ci_low"]
    for test in TESTS:
        assert table.at["oracle", test] > table.at["random", test], test
        assert table.at["random", f"{test}_ci_low"] <= table.at["random", test]


@pytest.mark.slow
def test_oracle_ranks_above_minilm_above_random() -> None:
    table = _table(
        _catalog(0),
        {"oracle": OracleEmbedding(), "minilm": EmbeddingAdapter(), "random": RandomEmbedding()},
        0,
        {"max_per_group": 5, "max_analogies": 10, "max_themes": 6, "pool_size": 20},
    )
    assert table.at["oracle", "overall_ci_low"] > table.at["minilm", "overall_ci_high"]
    assert table.at["minilm", "overall_ci_low"] > table.at["random", "overall_ci_high"]


def test_era_consistency_is_zero_without_structure_and_one_when_separated() -> None:
    rng = np.random.default_rng(0)
    noise = {e: rng.normal(size=(200, 32)) for e in ("1970s", "1990s")}
    noise = {e: v / np.linalg.norm(v, axis=1, keepdims=True) for e, v in noise.items()}
    assert abs(era_consistency(noise).mean()) < 0.02
    axes = np.eye(2)
    separated = {"1970s": np.repeat(axes[:1], 5, 0), "1990s": np.repeat(axes[1:], 5, 0)}
    np.testing.assert_allclose(era_consistency(separated), 0.5)


def test_analogy_hit_rule_and_fixed_eps() -> None:
    e = np.eye(4)
    entities = {"a": e[0], "b": e[0] + e[1], "c": e[2], "d": e[2] + e[1], "x": e[3]}
    hits, residuals = analogy_hits(entities, [("a", "b", "c", "d")])
    assert hits.tolist() == [1.0] and residuals[0] == pytest.approx(0.0)
    hits, _ = analogy_hits(entities, [("a", "b", "c", "x")], eps=0.5)
    assert hits.tolist() == [0.0]


def test_catalog_without_eras_skips_the_era_test_with_the_reason() -> None:
    catalog = _catalog(0).drop(columns=["release_year"])
    suite = suite_from_catalog(catalog_attributes(catalog), rng=np.random.default_rng(0), **SMALL)
    assert "era" in suite.skipped and "era" in suite.skipped["era"]
    assert not suite.eras and suite.analogies  # analogies fall back to genre x country


def _user_file(tmp_path: Path, catalog: pd.DataFrame, text: str) -> Path:
    artists = catalog["artist"].drop_duplicates().tolist()
    path = tmp_path / "tests.yaml"
    path.write_text(text.format(*artists), encoding="utf-8")
    return path


def test_user_test_set_runs_and_unknown_artists_are_named(tmp_path: Path) -> None:
    catalog = _catalog(0)
    attrs = catalog_attributes(catalog)
    good = _user_file(
        tmp_path,
        catalog,
        "eras:\n  early: ['{0}', '{1}']\n  late: ['{2}', '{3}']\n"
        "analogies:\n  - ['{0}', '{1}', '{2}', '{3}']\n  - ['{1}', '{0}', '{3}', '{2}']\n"
        "themes:\n  - text: rock music\n    constraints: ['genre=rock']\n",
    )
    suite = load_suite(good, attrs)
    assert set(suite.eras) == {"early", "late"} and len(suite.analogies) == 2
    assert suite.skipped == {"subgenre": f"{good} has no subgenres section"}
    result = score_embedding(
        suite, OracleEmbedding().embed, item_texts(catalog), attrs, model="o", seed=0
    )
    assert set(result.scores) == {"era", "analogy", "theme"}

    bad = _user_file(tmp_path, catalog, "eras:\n  early: ['{0}', 'Nirvanna Not Here']\n")
    with pytest.raises(VerificationInputError, match=r"eras.early names 'Nirvanna Not Here'"):
        load_suite(bad, attrs)
    (tmp_path / "c.yaml").write_text("themes:\n  - text: sad\n    constraints: ['mood=sad']\n")
    with pytest.raises(VerificationInputError, match="unknown constraint attribute 'mood'"):
        load_suite(tmp_path / "c.yaml", attrs)


def test_constraints_parse_and_reject_clearly() -> None:
    assert str(parse_constraint("year < 2000", where="x")) == "year<2000"
    with pytest.raises(VerificationInputError, match="only 'year' takes"):
        parse_constraint("genre<rock", where="x")
    with pytest.raises(VerificationInputError, match="not a number"):
        parse_constraint("year>=soon", where="x")


def test_missing_embedding_directory_is_a_clear_error(tmp_path: Path) -> None:
    adapter = EmbeddingAdapter(EmbeddingParams(path=str(tmp_path / "absent")))
    with pytest.raises(AdapterError, match="does not exist"):
        adapter.embed(["x"])
    with pytest.raises(AdapterError, match=r"needs a \*\.safetensors"):
        EmbeddingAdapter(EmbeddingParams(backend="wordllama", path=str(tmp_path))).embed(["x"])


def test_detector_compares_configured_models_and_skips_a_bad_user_set(tmp_path: Path) -> None:
    embed = {"capabilities": ["embed"]}
    context = make_context(
        n_users=60,
        models={
            "oracle": {
                "adapter": "callable",
                "params": {"target": "tests.verification_embedders:oracle_embed", **embed},
            },
            "random": {
                "adapter": "callable",
                "params": {"target": "tests.verification_embedders:random_embed", **embed},
            },
        },
    )
    (tmp_path / "bad.yaml").write_text("eras:\n  x: [Nobody At All]\n")
    detector = EmbeddingVerificationDetector(
        EmbeddingVerificationDetector.Params(test_set=tmp_path / "bad.yaml", **SMALL)
    )
    findings = {f.metric: f for f in check_detector(detector, context)}
    overall = findings["verification:overall"]
    by_model = {g.group: g for g in overall.groups}
    assert by_model["oracle"].ci_low > by_model["random"].ci_high
    assert overall.details["table"]["columns"][0] == "model"
    assert findings["verification:user:era"].status == "skipped"
    assert "Nobody At All" in findings["verification:user:era"].explanation


def test_html_report_renders_the_models_x_tests_table() -> None:
    from audit_sdk.reports.html_reporter import render_html

    from tests.report_factories import finding, make_report

    table = {
        "columns": ["model", "era", "overall"],
        "rows": [["minilm", "0.031 [0.025, 0.038]", "0.233 [0.193, 0.277]"]],
    }
    report = make_report(
        [
            finding(
                "verification_embeddings",
                "verification:overall",
                estimate=0.233,
                ci=(0.193, 0.277),
                status="pass",
                details={"table": table, "suite": "catalog"},
            )
        ]
    )
    html = render_html(report)
    assert "<th>era</th>" in html and ">0.031 [0.025, 0.038]</td>" in html
    assert '"table"' not in html  # not repeated in the Details JSON
