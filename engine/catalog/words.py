"""Words of the prompt that the spec has no field for, read where they are used (compose reads them from
``spec.prompt``): a scale asked by name, four on the floor, legato or staccato; and a mood's catalogue entry
(its register and articulation). The words are data: engine/catalog/data/phrases.toml and moods.toml."""
from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=2)
def _load(name: str) -> dict:
    return tomllib.loads(resources.files("engine.catalog.data").joinpath(name).read_text())


def _data() -> dict:
    return _load("phrases.toml")


def mood_entry(name: str) -> dict:
    """The catalogue entry of a mood (moods.toml): tempo, mode, register, articulation...; {} if unknown."""
    return next((m for m in _load("moods.toml")["mood"] if m["name"] == name), {})


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


ARTICULATIONS = ("legato", "staccato", "arpeggio")


def asked_articulation(text: str) -> str | None:
    """"legato", "staccato" or "arpeggio" when the prompt names one (phrases.toml [articulation]), else None;
    the first named wins."""
    table = _data()["articulation"]
    found = [(text.lower().find(w), kind) for kind in ARTICULATIONS
             for w in [_said(list(table[kind]), text)] if w is not None]
    return min(found)[1] if found else None


def arpeggio_step() -> float:
    """Quarter notes between an arpeggio's notes."""
    return float(_data()["articulation"]["arpeggio_step"])


def staccato_length() -> float:
    """The share of its time a staccato note is held."""
    return float(_data()["articulation"]["staccato_length"])
