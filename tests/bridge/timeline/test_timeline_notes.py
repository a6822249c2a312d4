"""`cadenza notes`: the lines the DAW scripts read, checked against a clip whose notes are known
(tests/bridge/timeline/conftest.py: bass C2 and snare on every beat, half a beat long)."""
from __future__ import annotations

from tests.conftest import run_cli


def test_notes_lists_every_note_in_quarter_notes_from_the_clips_own_bar(clip_folder) -> None:
    folder = clip_folder(tempo_bpm=90.0, meter=(3, 4), bars=2, start_bar=5)
    done = run_cli("notes", str(folder))
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    assert rows[0] == ["clip", "2", "90", "3", "4", "5"]
    parts = {row[1]: (row[4], int(row[2]), int(row[3])) for row in rows if row[0] == "part"}
    assert sorted(parts.values()) == [("bass", 33, 0), ("drums", 0, 9)]
    for index, (name, _, channel) in parts.items():
        notes = [(float(r[2]), float(r[3]), int(r[4]), int(r[5]), int(r[6])) for r in rows
                 if r[0] == "note" and r[1] == index]
        pitch = 36 if name == "bass" else 38
        # bar 5 is where the clip starts, so its first note is at 0, not at bar 5's beat 12
        assert notes == [(float(beat), 0.5, pitch, 100, channel) for beat in range(6)]
    stems = {row[1]: row[2] for row in rows if row[0] == "stem"}
    assert stems == {name: str((folder / "stems" / f"{name}.wav").resolve()) for name in ("bass", "drums")}
