"""Attribute phrases matched by meaning: a prompt's clauses against anchor phrases (engine/catalog/data/phrases.toml).

A word list finds "crescendo" and "fading out"; people also write "slowly grows", "dies out",
"from a whisper to a roar". Each clause of the prompt (split at punctuation and at "then",
"and", "with", "but") is embedded with the sentence model (engine/understand/embed.py) and compared with
the anchors of every value; a value is taken when its nearest anchor is similar enough and
clearly nearer than any other value's. The thresholds are data, beside the anchors.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from engine.understand import embed

_CLAUSE_SPLIT_RE = re.compile(r"[,.;:!?()]|\s+(?:then|and then|but|with|while|before|after|that|which)\s+")


@dataclass(frozen=True)
class PhraseMatch:
    """The value a clause means, the clause, and how near its anchor is (cosine similarity)."""

    value: str
    clause: str
    similarity: float


@lru_cache(maxsize=1)
def _data() -> dict:
    return tomllib.loads(resources.files("engine.catalog.data").joinpath("phrases.toml").read_text())


def clauses(text: str) -> list[str]:
    """The prompt's clauses: the whole text and its pieces between punctuation and joining words."""
    pieces = [p.strip() for p in _CLAUSE_SPLIT_RE.split(text) if p and p.strip()]
    return list(dict.fromkeys([text.strip(), *pieces]))


def by_meaning(attribute: str, text: str) -> PhraseMatch | None:
    """The value of ``attribute`` ("arc") a clause of ``text`` means, or None when none is clear."""
    table = _data()[attribute]
    values = list(table["anchors"])
    anchors = tuple(a for v in values for a in table["anchors"][v])
    owner = [v for v in values for _ in table["anchors"][v]]
    pieces = clauses(text)
    similarity = embed.encode_kept(pieces) @ _anchor_embeddings(anchors).T  # (clauses, anchors)
    best: PhraseMatch | None = None
    for clause, row in zip(pieces, similarity, strict=True):
        per_value = {v: float(np.max([s for s, o in zip(row, owner, strict=True) if o == v])) for v in values}
        ranked = sorted(per_value.items(), key=lambda kv: -kv[1])
        (value, top), (_, second) = ranked[0], ranked[1]
        if top >= table["min_similarity"] and top - second >= table["min_margin"]:
            if best is None or top > best.similarity:
                best = PhraseMatch(value, clause, round(top, 2))
    return best


def unhonoured() -> dict[str, str]:
    """Words understood but not honoured, each with the note the spec gets when a prompt says it."""
    return dict(_data()["unhonoured"])


@lru_cache(maxsize=4)
def _anchor_embeddings(anchors: tuple[str, ...]) -> np.ndarray:
    return embed.encode(anchors)

