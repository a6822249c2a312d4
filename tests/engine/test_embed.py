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
