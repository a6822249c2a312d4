"""POP909 read from a local folder: per song, bars of melody, bass and comping over chords.

POP909 (Wang et al., ISMIR 2020; MIT licence; github.com/music-x-lab/POP909-Dataset) holds 909
Chinese pop songs arranged for piano by musicians: a MELODY track, a BRIDGE track (secondary
melody) and a PIANO accompaniment, with beat, downbeat, chord and key annotations. It is not in
the repository: the manifest (engine/training/pop909_manifest.json) names the commit and every
file's sha256; `python -m engine.training.pop909 --check DIR` verifies a local copy.

What a song becomes here: bars cut at the annotated downbeats, every note placed on a sixteenth
grid by the annotated beat times (so the performed tempo drift is taken out), transposed so the
key's tonic is C. The bass is the piano's lowest line: the lowest note of an onset with no lower
note struck in the beat before it, below ``BASS_MAX_PITCH``; the rest of the piano is comping.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LICENCE = "MIT"
SOURCE = "https://github.com/music-x-lab/POP909-Dataset"
MANIFEST = Path(__file__).with_name("pop909_manifest.json")
DEFAULT_DIR = Path("/work/data/pop909")
STEPS_PER_BEAT = 4            # the sixteenth grid
BASS_MAX_PITCH = 55           # G3: a piano note above it is not a bass note
BASS_LOOKBACK_BEATS = 1.0     # a lower note struck this recently makes a note part of a figure, not the bass
NOTE_NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
QUALITIES = ("maj", "min", "dim", "aug", "sus")
ROLES = ("melody", "bass", "comp")


class Pop909Error(ValueError):
    """A POP909 folder or file that cannot be read as the dataset."""


@dataclass(frozen=True)
class BarNote:
    """A note inside a bar: onset step, length in steps, pitch (tonic moved to C), velocity, and how far
    the played onset lies from its step (in steps, the track's constant shift from the beat annotation
    taken out)."""

    step: int
    length: int
    pitch: int
    velocity: int
    offset: float = 0.0


@dataclass
class Bar:
    """One bar of a song: its beats, two chords (downbeat and half bar), and each role's notes."""

    beats: int
    chords: tuple[tuple[int, str] | None, tuple[int, str] | None]  # (root pc relative to tonic, quality)
    parts: dict[str, list[BarNote]] = field(default_factory=dict)


@dataclass
class Song:
    """A song's key segments; each is a run of bars in one key (the tonic moved to C)."""

    number: int
    segments: list[tuple[str, list[Bar]]]  # (mode, bars)


def pitch_class(name: str) -> int:
    """'F#' -> 6, 'Bb' -> 10."""
    if not name or name[0] not in NOTE_NAMES:
        raise Pop909Error(f"not a note name: {name!r}")
    pc = NOTE_NAMES[name[0]]
    for accidental in name[1:]:
        pc += {"#": 1, "b": -1}.get(accidental, 0)
    return pc % 12


def chord_label(label: str) -> tuple[int, str] | None:
    """A POP909 chord label as (root pc, quality in QUALITIES); None for 'N' (no chord)."""
    if label == "N" or ":" not in label:
        return None
    root, rest = label.split(":", 1)
    kind = rest.split("/")[0]
    if kind.startswith("hdim") or kind.startswith("dim"):
        quality = "dim"
    elif kind.startswith("aug"):
        quality = "aug"
    elif kind.startswith("sus"):
        quality = "sus"
    elif kind.startswith("min"):
        quality = "min"
    else:
        quality = "maj"
    return pitch_class(root), quality


def _read_rows(path: Path) -> list[list[str]]:
    if not path.exists():
        raise Pop909Error(f"{path} is missing (a POP909 song folder has chord_midi.txt, beat_midi.txt, "
                          "key_audio.txt and NNN.mid)")
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def song_dirs(root: Path) -> list[Path]:
    """The song folders under a POP909 copy (root/POP909/NNN or root/NNN)."""
    base = root / "POP909" if (root / "POP909").is_dir() else root
    dirs = sorted(p for p in base.iterdir() if p.is_dir() and p.name.isdigit()) if base.is_dir() else []
    if not dirs:
        raise Pop909Error(f"no POP909 song folders (NNN/) under {root}")
    return dirs


def _split_piano(notes: list[tuple[float, float, int, int]]) -> tuple[list, list]:
    """The piano's notes (beat onset, beat end, pitch, velocity) as (bass, comping)."""
    notes = sorted(notes, key=lambda n: (n[0], n[2]))
    bass, comp = [], []
    groups: dict[float, list] = {}
    for n in notes:
        groups.setdefault(round(n[0] * STEPS_PER_BEAT) / STEPS_PER_BEAT, []).append(n)
    struck: list[tuple[float, int]] = []  # (onset, pitch) of the group's lowest notes so far
    for onset in sorted(groups):
        group = groups[onset]
        lowest = min(group, key=lambda n: n[2])
        recent = [p for t, p in struck if onset - BASS_LOOKBACK_BEATS < t < onset]
        sounding = [p for t, p in struck if t < onset]
        if lowest[2] <= BASS_MAX_PITCH and not any(p < lowest[2] for p in recent) and (
                not sounding or lowest[2] <= max(sounding) + 12):
            bass.append(lowest)
            comp.extend(n for n in group if n is not lowest)
        else:
            comp.extend(group)
        struck.append((onset, lowest[2]))
    return bass, comp


def load_song(folder: Path) -> Song:
    """One song folder read into bars (see the module docstring)."""
    from symusic import Score

    number = int(folder.name)
    midi = folder / f"{folder.name}.mid"
    if not midi.exists():
        raise Pop909Error(f"{midi} is missing")
    beats = np.array([[float(x) for x in row[:3]] for row in _read_rows(folder / "beat_midi.txt")])
    chords = [(float(a), float(b), chord_label(c)) for a, b, c in _read_rows(folder / "chord_midi.txt")]
    keys = [(float(a), float(b), k) for a, b, k in _read_rows(folder / "key_audio.txt")]
    score = Score(str(midi)).to("second")
    beat_times = beats[:, 0]
    index = np.arange(len(beat_times), dtype=float)

    def to_beats(seconds: float) -> float:
        return float(np.interp(seconds, beat_times, index, left=-1.0, right=-1.0))

    tracks: dict[str, list[tuple[float, float, int, int]]] = {"MELODY": [], "PIANO": []}
    for track in score.tracks:
        if track.name.upper() in tracks:
            for n in track.notes:
                start, end = to_beats(n.time), to_beats(n.time + n.duration)
                if start >= 0 and end > start:
                    tracks[track.name.upper()].append((start, end, n.pitch, n.velocity))
    bass, comp = _split_piano(tracks["PIANO"])
    by_role = {"melody": tracks["MELODY"], "bass": bass, "comp": comp}
    downbeats = [int(i) for i in np.flatnonzero(beats[:, 2] > 0.5)]

    def chord_at(seconds: float) -> tuple[int, str] | None:
        for a, b, c in chords:
            if a - 0.05 <= seconds < b - 0.05:
                return c
        return None

    def key_at(seconds: float) -> tuple[int, str] | None:
        for a, b, k in keys:
            if a - 1.0 <= seconds < b + 1.0 and ":" in k:
                tonic, mode = k.split(":")
                return pitch_class(tonic), "minor" if mode.startswith("min") else "major"
        return None

    bars: list[tuple[tuple[int, str] | None, Bar]] = []
    for k in range(len(downbeats) - 1):
        first, nxt = downbeats[k], downbeats[k + 1]
        length = nxt - first
        if length not in (3, 4):
            bars.append((None, Bar(length, (None, None))))
            continue
        key = key_at(beat_times[first])
        half = first + length // 2
        bar = Bar(length, (chord_at(beat_times[first]), chord_at(beat_times[half])))
        bars.append((key, bar))
    # notes into bars
    steps_of = [b.beats * STEPS_PER_BEAT for _, b in bars]
    for role, notes in by_role.items():
        for b in bars:
            b[1].parts.setdefault(role, [])
        # a track's median distance from the grid is the beat annotation's shift, not the player's timing
        track = tracks["MELODY"] if role == "melody" else tracks["PIANO"]
        grid_shift = float(np.median([s * STEPS_PER_BEAT - round(s * STEPS_PER_BEAT) for s, *_ in track])
                           ) if track else 0.0
        for start, end, pitch, velocity in notes:
            step = round(start * STEPS_PER_BEAT)
            bar_index = int(np.searchsorted(downbeats, step / STEPS_PER_BEAT, side="right")) - 1
            if not 0 <= bar_index < len(bars):
                continue
            offset = step - downbeats[bar_index] * STEPS_PER_BEAT
            if offset >= steps_of[bar_index]:
                continue
            length = max(1, round((end - start) * STEPS_PER_BEAT))
            played = start * STEPS_PER_BEAT - step - grid_shift
            bars[bar_index][1].parts[role].append(BarNote(offset, length, pitch, velocity, played))
    # key segments, transposed so the tonic is C (the nearest way: -5..+6 semitones)
    segments: list[tuple[str, list[Bar]]] = []
    current: tuple[int, str] | None = None
    for key, bar in bars:
        if key is None:
            current = None
            continue
        if key != current:
            segments.append((key[1], []))
            current = key
        shift = -key[0] if key[0] <= 6 else 12 - key[0]
        bar.chords = tuple(None if c is None else ((c[0] - key[0]) % 12, c[1]) for c in bar.chords)
        for role, notes in bar.parts.items():
            bar.parts[role] = sorted((BarNote(n.step, n.length, n.pitch + shift, n.velocity, n.offset) for n in notes),
                                     key=lambda n: (n.step, n.pitch))
        segments[-1][1].append(bar)
    return Song(number, [s for s in segments if len(s[1]) >= 4])


def split_of(number: int) -> str:
    """The song's split: 'validation' (numbers ending ...0 of every 20), 'test' (...10), else 'train'."""
    if number % 20 == 0:
        return "validation"
    if number % 20 == 10:
        return "test"
    return "train"


def load(root: Path = DEFAULT_DIR, split: str | None = None, limit: int | None = None) -> list[Song]:
    """The songs of a local POP909 copy, optionally one split and the first ``limit`` songs."""
    songs = []
    for folder in song_dirs(root):
        if split is not None and split_of(int(folder.name)) != split:
            continue
        songs.append(load_song(folder))
        if limit is not None and len(songs) >= limit:
            break
    return songs


def file_digests(root: Path) -> dict[str, str]:
    """sha256 of every file the loader reads, by path relative to ``root``."""
    out = {}
    for folder in song_dirs(root):
        for name in (f"{folder.name}.mid", "beat_midi.txt", "chord_midi.txt", "key_audio.txt"):
            path = folder / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def write_manifest(root: Path, commit: str, out: Path = MANIFEST) -> None:
    """The manifest: source, commit, licence and the sha256 of every file read."""
    digests = file_digests(root)
    out.write_text(json.dumps({"name": "POP909", "source": SOURCE, "commit": commit, "licence": LICENCE,
                               "songs": len(song_dirs(root)), "files": digests}, indent=1, sort_keys=True) + "\n")


def check(root: Path, manifest: Path = MANIFEST) -> list[str]:
    """The files of a local copy that are missing or differ from the manifest (empty when it matches)."""
    expected = json.loads(manifest.read_text())["files"]
    problems = []
    for rel, digest in expected.items():
        path = root / rel
        if not path.exists():
            problems.append(f"missing: {rel}")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"differs: {rel}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", metavar="DIR", help="verify a local copy against the manifest")
    parser.add_argument("--manifest", metavar="DIR", help="write the manifest from a local copy")
    parser.add_argument("--commit", default="", help="with --manifest: the repository commit copied")
    args = parser.parse_args(argv)
    if args.manifest:
        write_manifest(Path(args.manifest), args.commit)
        return 0
    if args.check:
        problems = check(Path(args.check))
        print("\n".join(problems) or "POP909 copy matches the manifest")
        return 1 if problems else 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
