"""The reference set: real music the evaluation compares generated clips with, none of it trained on.

Two things, both taken from the corpus the committed checkpoint was trained on (engine/training/corpus.py's
cache of music21's Bach chorales, Essen folk songs and O'Neill's Irish tunes, engine/catalog/data/model.toml):

- ``pieces``: every work held out of training by the split rule the trainer uses
  (engine/training/dataset.py's ``is_validation``: crc32 of the work id mod 100 < 5), as notes. These are
  what MusPy's metrics are measured on: real music the model never saw.
- ``training_lines``: the top-line interval sequence of every pitched part of every training work
  (the same lines the novelty measure takes from a clip), so novelty, the longest melody run a clip
  shares with the training set, is measured against the actual training set.

Building it (`python -m engine.evaluation.reference`) reads the prepared corpus cache (``cadenza train``
prepares it; if absent it is parsed, about ten CPU-minutes) and checks the split's work counts
against the committed checkpoint's own record, so the held-out works are exactly those the
checkpoint's validation figures come from. The result is kept in
`engine/evaluation/data/reference.json.gz`, which the evaluation and its tests read; nothing parses the
corpus at test time.

Layout of a held-out piece: the corpus cache shifts an anacrusis so bar lines fall on bars (the
model's tokens need that); here each piece is moved back so its first note sounds at tick 0, as
music21 (and MusPy reading music21) lays a pickup out, so the shift's silent lead-in is not
counted as empty beats.
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from symusic import Note, Score, TimeSignature, Track

from engine.config import TICKS_PER_QUARTER
from engine.evaluation.metrics import top_lines
from engine.training.corpus import default_cache_dir, iter_scores, prepare
from engine.training.dataset import VALIDATION_PERCENT, is_validation

REFERENCE_FILE = "reference.json.gz"
FORMAT_VERSION = 2


@dataclass(frozen=True)
class Piece:
    """One reference piece: its corpus work id, its model style token (chorale, folk, celtic), its notes."""
    name: str
    kind: str
    score: Score


@dataclass(frozen=True)
class About:
    """What the reference file holds, in words and counts, for the report."""
    description: str
    pieces: int
    per_collection: dict[str, int]
    training_works: int
    training_lines: int
    split_rule: str
    checkpoint: str


def _piece_json(work, score) -> dict:
    """A cached work's notes as plain data, moved so its first note is at tick 0."""
    score = score.resample(TICKS_PER_QUARTER) if score.ticks_per_quarter != TICKS_PER_QUARTER else score
    start = min(int(n.time) for t in score.tracks for n in t.notes)
    tracks = []
    for track in score.tracks:
        notes = sorted([int(n.time) - start, int(n.duration), int(n.pitch)] for n in track.notes)
        if notes:
            tracks.append({"name": track.name or "part", "notes": notes})
    return {"name": work.work, "kind": work.style, "collection": work.collection, "title": work.title,
            "meter": list(work.meter), "tracks": tracks}


def _checkpoint_record(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False).get("record", {})


def build(out: Path, corpus_dir: Path | None = None, checkpoint: Path | None = None) -> About:
    """Write the held-out pieces and the training lines to ``out``; returns what was written.

    Raises ValueError if the split's counts differ from the checkpoint's record (then the cache is
    not the corpus that checkpoint was trained on, and "held out" would not be true).
    """
    from engine.model.generator import default_checkpoint

    directory = prepare(corpus_dir or default_cache_dir())
    pieces: list[dict] = []
    lines: list[list[int]] = []
    training_works = 0
    for work, score in iter_scores(directory):
        if is_validation(work.work):
            pieces.append(_piece_json(work, score))
        else:
            training_works += 1
            lines.extend(list(line) for line in top_lines(score) if line)
    checkpoint = checkpoint or default_checkpoint()
    record = _checkpoint_record(checkpoint)
    expected = (record.get("works_train"), record.get("works_validation"))
    if expected != (training_works, len(pieces)):
        raise ValueError(f"{directory} splits into {training_works} training and {len(pieces)} held-out works, "
                         f"but {checkpoint.name} was trained on {expected[0]} with {expected[1]} held out")
    per_collection = dict(sorted(Counter(p["collection"] for p in pieces).items()))
    split_rule = f"zlib.crc32(work id) % 100 < {VALIDATION_PERCENT} (engine/training/dataset.py is_validation)"
    description = (f"{len(pieces)} works held out of the training of {checkpoint.name} by the split rule "
                   f"{split_rule}: " + ", ".join(f"{n} {c}" for c, n in per_collection.items())
                   + f"; novelty is measured against the top lines of all {training_works} training works.")
    data = {
        "format": FORMAT_VERSION, "ticks_per_quarter": TICKS_PER_QUARTER, "description": description,
        "split_rule": split_rule, "checkpoint": checkpoint.name,
        "pieces": pieces,
        "training": {"works": training_works, "lines": lines},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt", encoding="utf-8", compresslevel=9) as f:
        json.dump(data, f, separators=(",", ":"))
    return about(str(out))


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
def _read(path: str | None) -> dict:
    source = Path(path) if path else resources.files("engine.evaluation.data").joinpath(REFERENCE_FILE)
    with source.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as f:
        return json.load(f)


@lru_cache(maxsize=2)
def load(path: str | None = None) -> tuple[Piece, ...]:
    """The held-out reference pieces, from ``path`` or the committed engine/data file."""
    data = _read(path)
    tpq = data["ticks_per_quarter"]
    return tuple(Piece(p["name"], p["kind"], _score(p, tpq)) for p in data["pieces"])


def training_lines(path: str | None = None) -> tuple[tuple[int, ...], ...]:
    """Interval sequences of the training works' top lines (what novelty compares a clip with)."""
    return tuple(tuple(line) for line in _read(path)["training"]["lines"])


def about(path: str | None = None) -> About:
    """What the reference file is: its description, counts and the split rule."""
    data = _read(path)
    return About(description=data["description"], pieces=len(data["pieces"]),
                 per_collection=dict(Counter(p["collection"] for p in data["pieces"])),
                 training_works=data["training"]["works"], training_lines=len(data["training"]["lines"]),
                 split_rule=data["split_rule"], checkpoint=data["checkpoint"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the evaluation's reference set: the works held out of "
                                                 "training, and the training works' melody lines for novelty.")
    default = Path(__file__).parent / "data" / REFERENCE_FILE
    parser.add_argument("--out", type=Path, default=default, help=f"where to write it (default {default})")
    parser.add_argument("--corpus", type=Path, default=None, help="prepared corpus cache (default: the user cache)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="checkpoint whose split to check against (default: the committed one)")
    args = parser.parse_args(argv)
    try:
        written = build(args.out, args.corpus, args.checkpoint)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{written.description}\nwritten to {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
