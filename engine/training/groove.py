"""The Groove MIDI Dataset (Magenta, CC BY 4.0) read from a local folder, as step grids.

The dataset stays out of the repository: `groove_manifest.json` (next to this module) names the
source, commit, licence and every file with its sha256; `load()` reads a folder laid out as the
dataset ships (`info.csv` plus `drummerN/session/*.mid`). Each performance becomes a grid of
16th-note steps over the 9 drum voices of the Groove paper's reduced kit, with per hit the
velocity (0-1) and the micro-timing offset from the step (-0.5..0.5 of a step), so the
drum model learns both from real players.

Bar flags come from the labels and the notes: every bar of a `fill` recording is a fill; in a
`beat` recording a bar is a fill when its tom hits, or its snare hits well above the
recording's usual, mark it out from the groove (the dataset labels fills only by recording).
The bar after a fill, and a recording's first bar, start a phrase.
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STEPS_PER_QUARTER = 4
# The Groove paper's 9-voice kit: (name, the pitch written, the General MIDI pitches it gathers).
VOICES: tuple[tuple[str, int, tuple[int, ...]], ...] = (
    ("kick", 36, (35, 36)),
    ("snare", 38, (37, 38, 40)),
    ("closed_hat", 42, (22, 42, 44)),
    ("open_hat", 46, (26, 46)),
    ("low_tom", 43, (41, 43, 45, 58)),
    ("mid_tom", 47, (47,)),
    ("high_tom", 50, (48, 50)),
    ("crash", 49, (49, 52, 55, 57)),
    ("ride", 51, (51, 53, 59)),
)
N_VOICES = len(VOICES)
_VOICE_OF = {pitch: i for i, (_, _, pitches) in enumerate(VOICES) for pitch in pitches}
TOMS = (4, 5, 6)
SNARE = 1
FILL_TOM_HITS = 3          # a beat bar with this many tom hits more than twice its recording's usual is a fill
FILL_SNARE_FACTOR = 1.8    # ... or with this many times the recording's median snare hits
FILL_SNARE_MIN = 6         # (and at least this many)
MANIFEST = Path(__file__).with_name("groove_manifest.json")
SPLITS = ("train", "validation", "test")


@dataclass
class Performance:
    """One Groove recording as a step grid (4/4 bars of 16 steps, or its own meter's length)."""

    name: str          # the MIDI file's path inside the dataset
    genre: str         # the style's first word: rock, funk, jazz, latin ...
    bpm: float
    numerator: int
    denominator: int
    kind: str          # beat or fill
    split: str         # train, validation, test
    hits: np.ndarray   # (steps, 9) bool
    velocity: np.ndarray  # (steps, 9) float32 0-1, 0 where no hit
    offset: np.ndarray    # (steps, 9) float32 -0.5..0.5 of a step, 0 where no hit
    fill: np.ndarray      # (bars,) bool
    phrase_start: np.ndarray  # (bars,) bool

    @property
    def steps_per_bar(self) -> int:
        return self.numerator * STEPS_PER_QUARTER * 4 // self.denominator

    @property
    def bars(self) -> int:
        return len(self.hits) // self.steps_per_bar


class GrooveError(ValueError):
    """The folder is not a Groove MIDI Dataset copy this loader can read."""


def genre_of(style: str) -> str:
    """The dataset's style label ('latin/brazilian-samba', 'funk/groove3') to its genre word."""
    return style.split("/")[0].split("-")[0].strip().lower()


def read_midi(path: Path, bpm: float, numerator: int, denominator: int) -> tuple[np.ndarray, ...]:
    """A drum MIDI file as (hits, velocity, offset) step grids, whole bars, the loudest hit per cell."""
    from symusic import Score

    score = Score(str(path))
    tpq = score.ticks_per_quarter
    step_ticks = tpq / STEPS_PER_QUARTER
    steps_per_bar = numerator * STEPS_PER_QUARTER * 4 // denominator
    notes = [n for t in score.tracks for n in t.notes if n.pitch in _VOICE_OF]
    last = max((n.time for n in notes), default=0) / step_ticks
    bars = max(1, int(np.ceil((last + 0.5) / steps_per_bar)))
    steps = bars * steps_per_bar
    hits = np.zeros((steps, N_VOICES), bool)
    velocity = np.zeros((steps, N_VOICES), np.float32)
    offset = np.zeros((steps, N_VOICES), np.float32)
    for n in notes:
        position = n.time / step_ticks
        step = int(np.floor(position + 0.5))
        if step >= steps:
            continue
        v = _VOICE_OF[n.pitch]
        if hits[step, v] and velocity[step, v] >= n.velocity / 127:
            continue
        hits[step, v] = True
        velocity[step, v] = n.velocity / 127
        offset[step, v] = np.clip(position - step, -0.5, 0.4999)
    return hits, velocity, offset


def bar_flags(hits: np.ndarray, steps_per_bar: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(fill, phrase_start) per bar, from the recording's label and its notes (module docstring)."""
    bars = len(hits) // steps_per_bar
    per_bar = hits[: bars * steps_per_bar].reshape(bars, steps_per_bar, N_VOICES)
    if kind == "fill":
        fill = np.ones(bars, bool)
    else:
        toms = per_bar[:, :, TOMS].sum(axis=(1, 2))
        snares = per_bar[:, :, SNARE].sum(axis=1)
        usual_toms = float(np.median(toms)) if bars else 0.0
        usual = float(np.median(snares)) if bars else 0.0
        fill = ((toms >= FILL_TOM_HITS) & (toms >= 2 * usual_toms + FILL_TOM_HITS)) | (
            (snares >= FILL_SNARE_MIN) & (snares >= FILL_SNARE_FACTOR * max(usual, 1.0)))
    start = np.zeros(bars, bool)
    if bars:
        start[0] = True
        start[1:] = fill[:-1] & ~fill[1:]
    return fill, start


def load(folder: str | Path, splits: tuple[str, ...] = SPLITS, limit: int | None = None) -> list[Performance]:
    """Every performance in ``folder`` (a Groove copy with its info.csv) of the given splits."""
    root = Path(folder)
    info = root / "info.csv"
    if not info.is_file():
        raise GrooveError(f"{root}: no info.csv; expected a Groove MIDI Dataset folder "
                          "(info.csv and drummerN/ folders), e.g. /work/data/groove")
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise GrooveError(f"unknown split {sorted(unknown)}; accepted: {', '.join(SPLITS)}")
    performances = []
    with info.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["split"] not in splits:
                continue
            path = root / row["midi_filename"]
            if not path.is_file():
                raise GrooveError(f"{path}: listed in info.csv but missing")
            numerator, denominator = (int(x) for x in row["time_signature"].split("-"))
            hits, velocity, offset = read_midi(path, float(row["bpm"]), numerator, denominator)
            steps_per_bar = numerator * STEPS_PER_QUARTER * 4 // denominator
            fill, start = bar_flags(hits, steps_per_bar, row["beat_type"])
            performances.append(Performance(
                name=row["midi_filename"], genre=genre_of(row["style"]), bpm=float(row["bpm"]),
                numerator=numerator, denominator=denominator, kind=row["beat_type"], split=row["split"],
                hits=hits, velocity=velocity, offset=offset, fill=fill, phrase_start=start))
            if limit is not None and len(performances) >= limit:
                break
    return performances


def write_manifest(folder: str | Path, commit: str, out: Path = MANIFEST) -> dict:
    """Record the folder's files with their sha256, the source and the licence (run once, committed)."""
    root = Path(folder)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".mid", ".csv"))
    manifest = {
        "name": "Groove MIDI Dataset",
        "source": "https://magenta.tensorflow.org/datasets/groove (copy in the public GitHub repository "
                  "zharry29/drums-with-llm, folder groove/)",
        "repository": "github:zharry29/drums-with-llm",
        "commit": commit,
        "licence": "CC BY 4.0 (Creative Commons Attribution 4.0 International), Google LLC / Magenta",
        "citation": "Gillick, Roberts, Engel, Eck, Bamman: Learning to Groove with Inverse Sequence "
                    "Transformations, ICML 2019",
        "local_folder": "/work/data/groove (any folder with this layout; `cadenza train --drums --data DIR`)",
        "files": {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files},
    }
    out.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def verify(folder: str | Path, manifest: Path = MANIFEST) -> list[str]:
    """The manifest's files that are missing from ``folder`` or differ from their recorded sha256."""
    root = Path(folder)
    recorded = json.loads(manifest.read_text())["files"]
    bad = []
    for name, digest in recorded.items():
        path = root / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            bad.append(name)
    return bad
