"""The fast path of downstream utility: the ONNX backend against sentence-transformers (the
reference), the vectorised ranking metrics against the one-list reference, the item-embedding
cache (each distinct text encoded once, reused across calls and across processes through the
file), and the same utility table whatever the path."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from audit_sdk.plugins.detectors._downstream_embedding_cache import (
    CachedEncoder,
    ItemEmbeddingCache,
)
from audit_sdk.plugins.detectors._downstream_encoders import SentenceEncoder, model_fingerprint
from audit_sdk.plugins.detectors._profile_utility import (
    default_encoder_path,
    profile_utility,
    ranking_metrics,
    ranking_metrics_many,
)

TEXTS = [
    "Jazz piece 0 by Miles Quartet (jazz; US; 2000)",
    "A devoted metal listener who loves Iron Thunder, Black Forge and Doom Riders, late at "
    "night, with some classical for the mornings.",
    "k-pop",
    "Symphony Hall (classical; AT; 1962)",
]


class _CountingEncoder:
    """A deterministic bag-of-characters encoder that counts what it is asked to encode."""

    fingerprint = "counting-v1"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), 26), dtype=np.float32)
        for i, text in enumerate(texts):
            for ch in text.lower():
                if "a" <= ch <= "z":
                    out[i, ord(ch) - 97] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


@pytest.mark.parametrize("seed", range(20))
def test_vectorised_metrics_equal_the_one_list_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 40, size=12)
    width = int(lengths.max())
    scores = np.full((12, width), -np.inf)
    relevant = np.zeros((12, width), dtype=bool)
    expected = []
    for row, n in enumerate(lengths):
        s = np.round(rng.normal(size=n), 1)  # ties, kept in list order by both
        r = np.zeros(n, dtype=bool)
        r[: rng.integers(0, min(n, 15))] = True
        scores[row, :n], relevant[row, :n] = s, r
        expected.append(ranking_metrics(s, r, 10))
    recall, ndcg = ranking_metrics_many(scores, relevant, 10)
    np.testing.assert_allclose(recall, [e[0] for e in expected], equal_nan=True)
    np.testing.assert_allclose(ndcg, [e[1] for e in expected], equal_nan=True)


def test_cached_encoder_encodes_each_distinct_text_once(tmp_path) -> None:
    store = ItemEmbeddingCache(tmp_path / "vectors.sqlite")
    first = _CountingEncoder()
    cached = CachedEncoder(first, "counting-test-once", store)
    vectors = cached.embed(["a b", "c", "a b", "c", "d"])
    assert first.calls == [["a b", "c", "d"]]
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert cached.embed(["d", "a b"]).shape == (2, 26) and len(first.calls) == 1
    # another process: nothing in memory, everything from the file
    from audit_sdk.plugins.detectors import _downstream_embedding_cache as module

    module._PROCESS_MEMORY.pop("counting-test-once")
    second = _CountingEncoder()
    again = CachedEncoder(second, "counting-test-once", store).embed(["c", "e"])
    assert second.calls == [["e"]]
    np.testing.assert_array_equal(again[0], vectors[1])
    # a different model fingerprint never sees those vectors
    third = _CountingEncoder()
    CachedEncoder(third, "counting-v2", store).embed(["c"])
    assert third.calls == [["c"]]


def _world(n_users: int = 12, n_items: int = 300) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(3)
    genres = ("rock", "jazz", "metal", "folk")
    genre = rng.integers(4, size=n_items)
    catalog = pd.DataFrame(
        {
            "title": [f"Track {i}" for i in range(n_items)],
            "artist": [f"Artist {i // 3}" for i in range(n_items)],
            "genres": [(genres[g],) for g in genre],
        },
        index=pd.Index([f"t{i}" for i in range(n_items)], name="item_id"),
    )
    users = [f"u{i}" for i in range(n_users)]
    like = rng.integers(4, size=n_users)
    held = [catalog.index[rng.choice(np.flatnonzero(genre == g), 4, replace=False)] for g in like]
    test = pd.DataFrame({"user_id": np.repeat(users, 4), "item_id": np.concatenate(held)})
    profiles = pd.DataFrame(
        {
            "user_id": users * 2,
            "text": [
                f"{u} is a {genres[g]} {genres[g]} fan" for u, g in zip(users, like, strict=True)
            ]
            * 2,
        }
    )
    return {"profiles": profiles, "train": test.iloc[:0], "test": test, "catalog": catalog}


def test_utility_is_the_same_with_and_without_the_cache(tmp_path) -> None:
    world = _world()
    plain = _CountingEncoder()
    plain.fingerprint = ""  # type: ignore[misc]  # no fingerprint: no reuse across calls
    reference = profile_utility(**world, encoder=plain, rng=np.random.default_rng(5), negatives=30)
    store = ItemEmbeddingCache(tmp_path / "vectors.sqlite")
    counting = _CountingEncoder()
    first = profile_utility(
        **world, encoder=counting, rng=np.random.default_rng(5), negatives=30, item_cache=store
    )
    pd.testing.assert_frame_equal(first, reference)
    # the duplicated profiles are encoded once; the second call encodes only profiles
    assert len(counting.calls[1]) == 12
    second = profile_utility(
        **world, encoder=counting, rng=np.random.default_rng(5), negatives=30, item_cache=store
    )
    pd.testing.assert_frame_equal(second, reference)
    assert len(counting.calls) == 3 and len(counting.calls[2]) == 12


def test_model_fingerprint_follows_the_files(tmp_path) -> None:
    (tmp_path / "config.json").write_text("{}")
    before = model_fingerprint(tmp_path)
    assert model_fingerprint(tmp_path) == before
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    assert model_fingerprint(tmp_path) != before


def test_not_a_model_directory_is_a_clear_error(tmp_path) -> None:
    from audit_sdk.errors import AuditSDKError

    with pytest.raises(AuditSDKError, match="not a sentence-transformers model directory"):
        SentenceEncoder(tmp_path).embed(["x"])


@pytest.mark.slow  # exports the ONNX graph once (a few CPU-seconds)
def test_onnx_backend_matches_sentence_transformers() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("onnxruntime")
    path = default_encoder_path()
    reference = SentenceEncoder(path, backend="torch").embed(TEXTS)
    onnx = SentenceEncoder(path, backend="onnx", batch_size=2)
    vectors = onnx.embed(TEXTS)  # two batches, padded differently
    assert onnx.resolved_backend() == "onnx" and vectors.shape == reference.shape
    assert (vectors * reference).sum(axis=1).min() > 0.99999
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    auto = SentenceEncoder(path)
    assert auto.resolved_backend() == "onnx" and auto.fingerprint.endswith(":onnx")
