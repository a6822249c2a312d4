"""The committed performance model (engine/model/perform.py): what it learned from POP909 shows."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from engine.model import perform

CARD = Path(perform.__file__).with_name("checkpoints") / "cadenza-perform.md"


def _part(level: int, bars: int = 8) -> list[perform.PlayedNote]:
    """A comping part: a three-note chord on every beat, all written at one velocity."""
    notes = []
    for bar in range(bars):
        for beat in range(4):
            for pitch in (60, 64, 67):
                notes.append(perform.PlayedNote(bar * 16 + beat * 4, bar, beat * 4, 4, pitch, level))
    return notes


def test_it_predicts_held_out_songs_better_than_the_datas_own_counts() -> None:
    record = perform.load().record
    for role in perform.ROLES:
        for target in ("velocity", "offset", "length"):
            assert record["validation"][role][target] < record["marginal"][role][target], (role, target)


def test_the_card_quotes_the_checkpoints_record() -> None:
    record, card = perform.load().record, CARD.read_text()
    assert "MIT" in card and "POP909" in card
    for role in perform.ROLES:
        row = re.search(rf"\| {role} \|" + r" ([\d.]+) \|" * 6, card)
        assert row, role
        quoted = [float(x) for x in row.groups()]
        assert quoted == [round(record[kind][role][target], 3)
                          for target in ("velocity", "offset", "length") for kind in ("validation", "marginal")]


def test_a_part_written_at_one_velocity_is_played_with_many_and_a_louder_part_louder() -> None:
    model = perform.load()
    soft = model.play(_part(40), "comp", seed=3)[0]
    loud = model.play(_part(104), "comp", seed=3)[0]
    assert len(set(soft)) >= 6 and len(set(loud)) >= 6
    assert np.mean(loud) > np.mean(soft) + 30


def test_a_chords_notes_share_their_timing_and_the_same_seed_plays_the_same() -> None:
    model = perform.load()
    notes = _part(72)
    velocities, offsets, lengths = model.play(notes, "comp", seed=5)
    assert (velocities, offsets, lengths) == model.play(notes, "comp", seed=5)
    assert velocities != model.play(notes, "comp", seed=6)[0]
    for k in range(0, len(notes), 3):
        assert len(set(offsets[k:k + 3])) == 1
    assert all(o in perform.OFFSETS for o in offsets)


def test_a_note_is_held_for_the_time_to_the_next_onset_not_for_its_written_length() -> None:
    """The part model writes a length before it knows the next onset; played, a line of quarter notes
    written as sixteenths is held about a beat, a line of eighths about an eighth."""
    model = perform.load()
    quarters = [perform.PlayedNote(b * 16 + s, b, s, 1, 72 + s // 4, 88) for b in range(8) for s in (0, 4, 8, 12)]
    eighths = [perform.PlayedNote(b * 16 + s, b, s, 1, 72 + s // 2, 88) for b in range(8) for s in range(0, 16, 2)]
    held_quarters = np.mean(model.play(quarters, "melody", seed=1)[2])
    held_eighths = np.mean(model.play(eighths, "melody", seed=1)[2])
    assert held_quarters >= 3 and 1 <= held_eighths <= 2.5
