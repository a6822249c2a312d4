"""The sentence-embedding model: loads offline, unit vectors, meaning-ordered, safe across threads."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from engine.understand import embed


def test_embeddings_are_unit_vectors_of_the_model_width() -> None:
    vectors = embed.encode(["a calm piano piece", "aggressive thrash metal"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_similarity_follows_meaning() -> None:
    similarity = embed.rank("a gentle lullaby for a baby", ("soft quiet music for sleeping", "loud heavy metal riffs"))
    assert similarity[0] > similarity[1]


def test_concurrent_encodes_from_a_thread_pool_agree_with_serial_ones() -> None:
    sentences = [f"a groove number {i} with bass and drums" for i in range(16)]
    serial = embed.encode(sentences)
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda s: embed.encode([s])[0], sentences))
    assert np.allclose(np.stack(parallel), serial, atol=1e-4)


def test_kept_embeddings_are_the_models_and_survive_a_full_cache(monkeypatch):
    """encode_kept answers as encode does, and a sentence found in a full cache is answered even when the same
    call's new sentences push the oldest ones out (it was a KeyError once the suite had read 256 clauses)."""
    monkeypatch.setattr(embed, "SENTENCES_KEPT", 3)
    monkeypatch.setattr(embed, "_kept", type(embed._kept)())
    first = embed.encode_kept(["warm pad", "slap bass", "brushes"])
    again = embed.encode_kept(["warm pad", "a new clause", "another one"])  # "warm pad" was the oldest kept
    assert np.allclose(first, embed.encode(["warm pad", "slap bass", "brushes"]), atol=1e-6)
    assert np.array_equal(again[0], first[0])
    assert list(embed._kept) == ["warm pad", "a new clause", "another one"]
