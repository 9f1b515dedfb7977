"""Intrinsic verification on HetRec 2011 Last.fm 2K (real data, tags but no release years):
test sets come from tag-derived genres, hierarchies, countries and era tags; the packaged
WordLlama scores above a random embedding; a catalog without era tags skips the era test
with the reason. (MiniLM's row of the same table: examples/verification_hetrec.yaml.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audit_sdk.adapters.embedding_adapter import EmbeddingAdapter, EmbeddingParams
from audit_sdk.plugins.detectors.verification_embeddings import metadata_texts

from audit_sdk.data.hetrec_loader import HetRecLastfmLoader, HetRecLastfmParams
from audit_sdk.verification.catalog_attributes import catalog_attributes
from audit_sdk.verification.intrinsic_tests import score_embedding, verification_table
from audit_sdk.verification.test_sets import suite_from_catalog
from tests.verification_embedders import RandomEmbedding

pytestmark = pytest.mark.real_data


def test_hetrec_table_wordllama_above_random(hetrec_dir: Path) -> None:
    catalog = HetRecLastfmLoader(HetRecLastfmParams(directory=str(hetrec_dir))).load().catalog.frame
    attrs = catalog_attributes(catalog)
    assert attrs["year"].isna().all()  # tags, not years
    suite = suite_from_catalog(
        attrs,
        rng=np.random.default_rng(0),
        max_per_group=8,
        max_analogies=20,
        max_themes=10,
        pool_size=60,
    )
    assert any(" " in s for subs in suite.subgenres.values() for s in subs)  # e.g. "hard rock"
    texts = metadata_texts(catalog)
    models = {
        "wordllama": EmbeddingAdapter(EmbeddingParams(backend="wordllama")),
        "random": RandomEmbedding(),
    }
    table = verification_table(
        [
            score_embedding(suite, m.embed, texts, attrs, model=n, seed=0, n_resamples=300)
            for n, m in models.items()
        ]
    )
    assert table.at["wordllama", "overall_ci_low"] > table.at["random", "overall_ci_high"]
    # eras from era tags: the test runs on those artists; without them it is skipped, saying why
    assert "era" not in suite.skipped and table.at["wordllama", "era_n"] >= 16
    no_eras = suite_from_catalog(
        catalog_attributes(catalog.drop(columns=["era"])),
        rng=np.random.default_rng(0),
        pool_size=20,
    )
    assert "0 of 17632 items" in no_eras.skipped["era"]
