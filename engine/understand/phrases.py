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
    similarity = embed.encode(pieces) @ _anchor_embeddings(anchors).T     # (clauses, anchors)
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


def _said(words: list[str], text: str) -> str | None:
    """The first of ``words`` (longest first) in the lower-cased ``text`` that no "no"/"without" refuses."""
    lowered = text.lower()
    for word in sorted(words, key=len, reverse=True):
        for match in re.finditer(r"(?<![\w-])" + re.escape(word).replace(r"\ ", r"[\s-]+") + r"(?![\w-])", lowered):
            if not re.search(r"\b(?:no|without|not|non)[\s-]+(?:\w+[\s-]+)?$", lowered[:match.start()]):
                return word
    return None


def asked_scale(text: str, mode: str) -> tuple[str, tuple[int, ...]] | None:
    """The scale a prompt names (phrases.toml [scales]) and its steps above the tonic, for a key whose
    third is ``mode`` ("major"/"minor"); None when it names none."""
    table = dict(_data()["scales"])
    by_mode = table.pop("by_mode", {})
    word = _said(list(table) + list(by_mode), text)
    if word is None:
        return None
    steps = table[word] if word in table else by_mode[word][mode]
    return word, tuple(steps)


def asks_four_on_the_floor(text: str) -> bool:
    """True when the prompt asks for the kick on every beat (phrases.toml [four_on_the_floor])."""
    return _said(list(_data()["four_on_the_floor"]["words"]), text) is not None


def asked_articulation(text: str) -> str | None:
    """"legato" or "staccato" when the prompt names one (phrases.toml [articulation]), else None."""
    table = _data()["articulation"]
    found = [(text.lower().find(w), kind) for kind in ("legato", "staccato")
             for w in [_said(list(table[kind]), text)] if w is not None]
    return min(found)[1] if found else None


def staccato_length() -> float:
    """The share of its time a staccato note is held."""
    return float(_data()["articulation"]["staccato_length"])
