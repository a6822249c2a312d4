"""Key finding (Krumhansl-Schmuckler) and per-bar chord detection on synthesised notes."""
from __future__ import annotations

import pytest

from engine.music.analysis import chords_per_bar, find_key, roman
from engine.music.notes import GridNote
from engine.music.theory import Key, Meter


def _melody(pitches: list[int], length: int = 480) -> list[GridNote]:
    return [GridNote(i * length, length, p) for i, p in enumerate(pitches)]


@pytest.mark.parametrize(("pitches", "expected"), [
    ([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60], Key("C", "major")),
    ([57, 59, 60, 62, 64, 65, 68, 69, 64, 60, 57, 68, 69], Key("A", "minor")),
    ([66, 68, 70, 71, 73, 75, 77, 78, 73, 70, 66], Key("F#", "major")),
    ([62, 64, 65, 67, 69, 70, 73, 74, 69, 65, 62], Key("D", "minor")),
])
def test_find_key(pitches: list[int], expected: Key) -> None:
    key, r = find_key(_melody(pitches))
    assert (key.tonic_pc, key.mode) == (expected.tonic_pc, expected.mode)
    assert 0.5 < r <= 1.0


def test_find_key_transposes_with_the_notes() -> None:
    base = [60, 64, 67, 72, 65, 69, 67, 71, 74, 67, 64, 60]
    for shift in range(12):
        key, _ = find_key(_melody([p + shift for p in base]))
        assert key.tonic_pc == shift % 12 and key.mode == "major"


def test_find_key_needs_notes() -> None:
    with pytest.raises(ValueError, match="no pitched notes"):
        find_key([])


def test_chords_per_bar_finds_a_written_progression() -> None:
    key, meter = Key("G", "major"), Meter(3, 4)
    bar = 1440
    triads = [(43, 59, 62, 67), (36, 60, 64, 67), (38, 57, 62, 66), (40, 59, 64, 67)]  # G C D Em
    notes = [GridNote(i * bar, bar, p) for i, chord in enumerate(triads) for p in chord]
    chords = chords_per_bar(notes, key, meter, 4, 480)
    assert [c.name for c in chords] == ["G", "C", "D", "Em"]
    assert [roman(c) for c in chords] == ["I", "IV", "V", "vi"]


def test_a_note_counts_in_every_bar_it_sounds_in() -> None:
    notes = [GridNote(0, 3840, 45), GridNote(0, 3840, 60), GridNote(0, 3840, 64)]  # A minor over two bars
    chords = chords_per_bar(notes, Key("C", "major"), Meter(4, 4), 2, 480)
    assert [c.name for c in chords] == ["Am", "Am"]


def test_minor_keys_get_a_major_dominant_when_the_leading_tone_sounds() -> None:
    key, meter = Key("A", "minor"), Meter(4, 4)
    bar = 1920
    voicings = [(45, 60, 64, 69), (40, 56, 59, 64), (40, 55, 59, 64)]  # Am, E (with G#), Em (with G)
    notes = [GridNote(i * bar, bar, p) for i, chord in enumerate(voicings) for p in chord]
    chords = chords_per_bar(notes, key, meter, 3, 480)
    assert [c.name for c in chords] == ["Am", "E", "Em"]
    assert chords[1].pcs == (4, 8, 11) and chords[2].pcs == (4, 7, 11)


def test_a_lone_repeated_note_is_not_read_as_a_diminished_chord() -> None:
    chords = chords_per_bar([GridNote(0, 480, 71), GridNote(480, 960, 71)], Key("A", "minor"), Meter(4, 4), 1, 480)
    assert chords[0].quality != "dim"
