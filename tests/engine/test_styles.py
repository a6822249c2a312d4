"""The style and mood catalogues as data: every entry complete and usable by the arranger."""
from __future__ import annotations

import json

import pytest

from engine.catalog import instruments, styles
from engine.compose.pipeline import compose
from engine.understand.prompt import Overrides, _moods, understand
from tests.conftest import DEV_PROMPTS


@pytest.mark.parametrize("style", sorted(styles.catalogue()))
def test_every_style_is_complete_and_composes(style: str) -> None:
    entry = styles.get(style)
    assert entry.description and entry.description != entry.name, "a description to compare prompts with"
    assert entry.keywords and entry.tempo[0] <= entry.tempo[1]
    for word in entry.default_parts:
        instruments.lookup(word)  # KeyError names a part the instrument catalogue does not know
    for name, pattern in entry.patterns.items():
        assert len(pattern) == 16 and set(pattern) <= set("Xxgs-R358pc"), (name, pattern)
    parts = {i.part for i in instruments.catalogue()}
    for part, role in entry.part_roles:  # a part the catalogue knows, a role the arranger plays
        assert part in parts and role in ("melody", "chords", "keys", "pad", "bass"), (part, role)
    assert all(1 <= degree <= 7 for progression in entry.progressions for degree in progression)
    assert entry.mode in (None, *styles.MODES)
    spec = understand(f"{entry.keywords[0]}, 4 bars", Overrides(seed=1))
    assert spec.style == style
    score = compose(spec)
    assert sum(len(track.notes) for track in score.tracks) > 0


def test_every_mood_has_a_description_and_words() -> None:
    for mood in _moods():
        assert mood["description"]
        assert mood["words"] or mood["name"] == "neutral"


def test_the_dev_prompts_styles_are_all_in_the_catalogue() -> None:
    assert DEV_PROMPTS.exists(), f"{DEV_PROMPTS} is missing: shared/eval/ belongs beside the repository"
    genres = {json.loads(line)["expect"].get("genre") for line in DEV_PROMPTS.read_text().splitlines() if line}
    assert genres - {None} <= set(styles.catalogue())


def test_a_style_register_places_its_comping() -> None:
    # the jazz trio's piano comps around middle C (styles.toml registers), not in the keys' default high register
    spec = understand("Jazz swing trio, walking upright bass, ride cymbal and piano comping, C major, 160 bpm",
                      Overrides(seed=1))
    piano = next(track for track in compose(spec).tracks if track.name == "piano")
    low, high = dict(styles.get("jazz").registers)["keys"]
    pitches = [note.pitch for note in piano.notes]
    assert pitches and low <= min(pitches) and max(pitches) <= high, (min(pitches), max(pitches))
