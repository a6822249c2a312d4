"""A POP909-shaped song folder written by the test itself, with every value known.

Eight bars of 4/4 at 120 BPM (a beat every 0.5 s), D major. Per bar: the melody plays four
quarter notes; the piano plays a bass note on beats 1 and 3 (D2 = 38 or G2 = 43) and a three-note
chord on beats 2 and 4 (around D4). Chords: D (bars 0-3 and 6-7), G (bars 4-5); the downbeat is
every fourth beat. The MIDI's own tempo is 120, so seconds and beats agree.
"""
from __future__ import annotations

from pathlib import Path

from symusic import Note, Score, Tempo, TimeSignature, Track

BARS = 8
BEAT_SECONDS = 0.5
TPQ = 480
CHORD_OF_BAR = ["D:maj"] * 4 + ["G:maj"] * 2 + ["D:maj"] * 2
BASS_OF_BAR = [38] * 4 + [43] * 2 + [38] * 2
TRIAD_OF_BAR = [(62, 66, 69)] * 4 + [(62, 67, 71)] * 2 + [(62, 66, 69)] * 2
MELODY = [74, 76, 78, 76]  # D5 E5 F#5 E5, every bar


def write_song(root: Path, number: int = 1, key: str = "D:maj") -> Path:
    """Write song ``number`` under root/POP909/NNN and return its folder."""
    folder = root / "POP909" / f"{number:03d}"
    folder.mkdir(parents=True)
    score = Score(TPQ)
    score.tempos.append(Tempo(0, qpm=120.0))
    score.time_signatures.append(TimeSignature(0, 4, 4))
    melody, bridge, piano = Track(name="MELODY"), Track(name="BRIDGE"), Track(name="PIANO")
    for bar in range(BARS):
        for beat in range(4):
            t = (bar * 4 + beat) * TPQ
            melody.notes.append(Note(t, TPQ - 20, MELODY[beat], 90))
            if beat in (0, 2):
                piano.notes.append(Note(t, TPQ - 20, BASS_OF_BAR[bar], 70))
            else:
                for pitch in TRIAD_OF_BAR[bar]:
                    piano.notes.append(Note(t, TPQ - 20, pitch, 60))
    score.tracks.extend([melody, bridge, piano])
    score.dump_midi(str(folder / f"{number:03d}.mid"))
    beats = BARS * 4 + 1
    (folder / "beat_midi.txt").write_text("".join(
        f"{b * BEAT_SECONDS} {1.0 if b % 2 == 0 else 0.0} {1.0 if b % 4 == 0 else 0.0}\n" for b in range(beats)))
    (folder / "chord_midi.txt").write_text("".join(
        f"{bar * 4 * BEAT_SECONDS}\t{(bar + 1) * 4 * BEAT_SECONDS}\t{CHORD_OF_BAR[bar]}\n" for bar in range(BARS)))
    (folder / "key_audio.txt").write_text(f"0.0\t{BARS * 4 * BEAT_SECONDS + 1}\t{key}\n")
    return folder
