"""The reference set: real music the evaluation compares generated clips with.

A small, fixed selection from music21's bundled corpus (it installs offline): Bach chorales
(4-part harmony) and folk tunes (Essen and O'Neill's, single-line melodies). Parsing it takes
about a minute, so it is done once by `python -m engine.reference` and kept as notes in
`engine/data/reference.json.gz`, which the evaluation and its tests read; nothing parses the
corpus at test time.

The same pieces also stand in for "the training set" when the evaluation measures novelty
(longest shared note n-gram), since the learned model's training set is not available here.
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from symusic import Note, Score, TimeSignature, Track

from engine.config import TICKS_PER_QUARTER

REFERENCE_FILE = "reference.json.gz"
CHORALES = 50
ESSEN_TUNES = 25
ONEILL_TUNES = 25


@dataclass(frozen=True)
class Piece:
    """One reference piece: its corpus name and its notes as a Score."""

    name: str
    kind: str  # "chorale" or "folk"
    score: Score


def _music21_to_json(name: str, kind: str, stream) -> dict:
    """Notes of a parsed music21 score as plain data: ticks at TICKS_PER_QUARTER, one track per part."""
    from music21 import meter as m21meter

    signatures = list(stream.recurse().getElementsByClass(m21meter.TimeSignature))
    numerator, denominator = (signatures[0].numerator, signatures[0].denominator) if signatures else (4, 4)
    parts = list(stream.parts) if stream.parts else [stream]
    tracks = []
    for part in parts:
        notes = []
        for element in part.stripTies().flatten().notes:
            duration = round(float(element.quarterLength) * TICKS_PER_QUARTER)
            if duration <= 0:
                continue  # grace notes have no time of their own
            onset = round(float(element.offset) * TICKS_PER_QUARTER)
            for pitch in element.pitches:
                notes.append([onset, duration, int(pitch.midi)])
        if notes:
            tracks.append({"name": str(part.partName or part.id or "part"), "notes": sorted(notes)})
    return {"name": name, "kind": kind, "meter": [numerator, denominator], "tracks": tracks}


def build(out: Path) -> int:
    """Parse the fixed selection from music21's corpus and write it to ``out``; returns the piece count."""
    from music21 import corpus

    pieces: list[dict] = []
    chorales = sorted(corpus.getComposer("bach"), key=str)
    step = max(1, len(chorales) // CHORALES)
    for path in chorales[::step][:CHORALES]:
        pieces.append(_music21_to_json(f"bach/{path.stem}", "chorale", corpus.parse(path)))
        print(f"  {pieces[-1]['name']}", file=sys.stderr)
    for folder, count in (("essenFolksong/altdeu10", ESSEN_TUNES), ("oneills1850/0001-0050", ONEILL_TUNES)):
        opus = corpus.parse(folder)
        for number, score in enumerate(opus.scores[:count], start=1):
            pieces.append(_music21_to_json(f"{folder}#{number}", "folk", score))
        print(f"  {folder}: {count} tunes", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt", encoding="utf-8") as f:
        json.dump({"ticks_per_quarter": TICKS_PER_QUARTER, "pieces": pieces}, f, separators=(",", ":"))
    return len(pieces)


def _score(data: dict, tpq: int) -> Score:
    score = Score(tpq)
    score.time_signatures.append(TimeSignature(0, *data["meter"]))
    for entry in data["tracks"]:
        track = Track(name=entry["name"], program=0, is_drum=False)
        for onset, duration, pitch in entry["notes"]:
            track.notes.append(Note(onset, duration, pitch, 80))
        score.tracks.append(track)
    return score


@lru_cache(maxsize=2)
def load(path: str | None = None) -> tuple[Piece, ...]:
    """The reference pieces, from ``path`` or the committed engine/data file."""
    source = Path(path) if path else resources.files("engine.data").joinpath(REFERENCE_FILE)
    with source.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as f:
        data = json.load(f)
    tpq = data["ticks_per_quarter"]
    return tuple(Piece(p["name"], p["kind"], _score(p, tpq)) for p in data["pieces"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the evaluation's reference set from music21's corpus.")
    default = Path(__file__).parent / "data" / REFERENCE_FILE
    parser.add_argument("--out", type=Path, default=default, help=f"where to write it (default {default})")
    args = parser.parse_args(argv)
    count = build(args.out)
    print(f"{count} pieces written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
