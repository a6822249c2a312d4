"""POP909 reader: a played onset's distance from its sixteenth is kept (the performance model's timing)."""
from __future__ import annotations

from pathlib import Path

from symusic import Score

from engine.training import pop909
from tests.engine.training.pop909_fixture import MELODY, TPQ, write_song


def test_an_onset_played_early_keeps_its_offset_and_its_step(tmp_path: Path) -> None:
    folder = write_song(tmp_path)
    midi = folder / f"{folder.name}.mid"
    score = Score(str(midi))
    melody = next(t for t in score.tracks if t.name == "MELODY")
    early = TPQ // 4 // 5  # a fifth of a sixteenth
    second = melody.notes[1]  # bar 1, beat 2
    second.time -= early
    score.dump_midi(str(midi))
    _, bars = pop909.load_song(folder).segments[0]
    notes = bars[0].parts["melody"]
    assert [(n.step, n.pitch) for n in notes] == [(4 * b, p - 2) for b, p in enumerate(MELODY)]
    assert abs(notes[1].offset + 0.2) < 0.01
    assert all(abs(n.offset) < 1e-6 for i, n in enumerate(notes) if i != 1)
