"""The performance model: how a pitched part's written notes are played (velocity and timing).

The part model (engine/model/parts.py) writes each note's onset step, length, pitch and a velocity
band (8 bands of 16); a part's bands set how loud each bar is. It chooses a note's length before it
chooses the next onset, so its lines come out more detached than POP909's (a sixteenth, then a rest).
This small network, fitted on POP909's played melody and piano tracks
(engine/training/train_perform.py), plays the written notes: per note it gives the velocity
(``VELOCITY_CLASSES`` classes of ``VELOCITY_STEP``), how far the onset lies from its sixteenth
(``OFFSETS``, in steps) and how long the note is held (``LENGTHS``: the articulation, now that the
next onset is known), from the note's role, the level of its bar and the bar before (the mean of the
written velocities), its place in the beat, bar and phrase, the chord it sounds in (size, place from
the top), register, the melodic step, the time to the onsets around it, and the previous note's
velocity and timing as played (so a chord's notes and a
phrase's notes are played together, not each on its own). Notes are played one after another,
sampled from the predicted distributions with the part's seed. Timing is per onset: a chord's notes
take its lowest note's offset (in POP909 the notes of a chord played off the grid lie a median 0.008
steps apart).

What POP909 teaches: its velocities are a pianist's (76 values in the held-out melody, standard
deviation 16), but its onsets sit on the annotated beat grid for about 92% of the notes (the dataset's
MIDI was aligned to the beats; cadenza-perform.md), so the learned timing is mostly on the grid with occasional small
pushes and drags; it is the data's timing, not a typed-in jitter.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROLES = ("melody", "bass", "comp")
VELOCITY_STEP = 4                           # velocity classes: 0-3, 4-7, ... 124-127
VELOCITY_CLASSES = 128 // VELOCITY_STEP
OFFSETS = tuple(round(-0.15 + 0.025 * k, 3) for k in range(13))  # onset offset classes, in grid steps
OFFSET_LIMIT = 0.1625                       # beyond it a note is off its step by rhythm (a triplet), not timing
STEPS_PER_BEAT = 4
PHRASE_BARS = 4
CHECKPOINT_ENV = "CADENZA_PERFORM_CHECKPOINT"
CHECKPOINT_NAME = "cadenza-perform.npz"
LENGTHS = (1, 2, 3, 4, 6, 8, 12, 16)        # played length classes, in steps (the part model's DURATIONS)
N_STATIC = 3 + 2 + 4 + 4 + 1 + PHRASE_BARS + 4 + 2 + 2
IOI_COLUMN = N_STATIC - 1                   # log2(1 + steps to the next onset) / 4
N_FEATURES = N_STATIC + 3


@dataclass(frozen=True)
class PlayedNote:
    """A note in a part: absolute onset step, bar, step in its bar, length in steps, pitch, velocity
    (and, read from a performance, its onset's offset from the step)."""

    onset: int
    bar: int
    step: int
    length: float
    pitch: int
    velocity: int
    offset: float = 0.0


def flatten(bars: list[list], steps_per_bar: list[int] | int) -> list[PlayedNote]:
    """A part's bars (notes with .step, .length, .pitch, .velocity) as one sorted list of PlayedNotes."""
    out, start = [], 0
    for index, notes in enumerate(bars):
        steps = steps_per_bar if isinstance(steps_per_bar, int) else steps_per_bar[index]
        out += [PlayedNote(start + n.step, index, n.step, n.length, n.pitch, n.velocity, getattr(n, "offset", 0.0))
                for n in notes]
        start += steps
    return sorted(out, key=lambda n: (n.onset, n.pitch))


def static_features(notes: list[PlayedNote], role: str) -> np.ndarray:
    """Per note, what the score says (module docstring); the played context is added while playing."""
    x = np.zeros((len(notes), N_STATIC), dtype=np.float32)
    if not notes:
        return x
    onsets = sorted({n.onset for n in notes})
    at: dict[int, list[int]] = {}
    for i, n in enumerate(notes):
        at.setdefault(n.onset, []).append(i)
    nxt = dict(zip(onsets, onsets[1:], strict=False))
    prv = dict(zip(onsets[1:], onsets, strict=False))
    top = {t: max(notes[i].pitch for i in idx) for t, idx in at.items()}
    in_bar: dict[int, list[int]] = {}
    for n in notes:
        in_bar.setdefault(n.bar, []).append(n.velocity)
    level = {bar: float(np.mean(v)) / 127 for bar, v in in_bar.items()}
    r = ROLES.index(role)
    for i, n in enumerate(notes):
        c = 0
        x[i, c + r] = 1
        c += 3
        x[i, c:c + 2] = level[n.bar], level.get(n.bar - 1, level[n.bar])
        c += 2
        x[i, c + n.step % STEPS_PER_BEAT] = 1
        c += 4
        x[i, c + min(n.step // STEPS_PER_BEAT, 3)] = 1
        c += 4
        group = at[n.onset]
        # the last onset of its bar
        x[i, c] = float(n.onset not in nxt or notes[group[0]].bar != notes[at[nxt[n.onset]][0]].bar)
        c += 1
        x[i, c + n.bar % PHRASE_BARS] = 1
        c += PHRASE_BARS
        pitches = sorted((notes[j].pitch for j in group), reverse=True)
        rank = pitches.index(n.pitch)
        x[i, c:c + 4] = (min(len(group) - 1, 4) / 4, float(rank == 0), float(rank == len(group) - 1),
                         rank / max(1, len(group) - 1))
        c += 4
        before = prv.get(n.onset)
        x[i, c] = (n.pitch - 60) / 24
        x[i, c + 1] = 0.0 if before is None else min(2.0, max(-2.0, (top[n.onset] - top[before]) / 12))
        c += 2
        ioi_before = 16 if before is None else n.onset - before
        ioi_after = 16 if n.onset not in nxt else nxt[n.onset] - n.onset
        x[i, c:c + 2] = (np.log2(1 + ioi_before) / 4, np.log2(1 + ioi_after) / 4)
    return x


def played_context(previous_velocity: int | None, previous_offset: float | None) -> tuple[float, float, float]:
    """The three played-context features: the previous note's velocity and offset as played, and
    whether there was one."""
    if previous_velocity is None:
        return 0.0, 0.0, 0.0
    return previous_velocity / 127, (previous_offset or 0.0) / OFFSETS[-1], 1.0


def length_class(length: float) -> int:
    """The nearest played length class (ties to the shorter)."""
    return int(np.argmin([abs(d - length) for d in LENGTHS]))


def offset_class(offset: float) -> int | None:
    """The nearest offset class, or None for an onset off its step by more than timing (a triplet)."""
    if abs(offset) > OFFSET_LIMIT:
        return None
    return int(np.argmin([abs(o - offset) for o in OFFSETS]))


class PerformanceModel:
    """The fitted network in numpy: two hidden ReLU layers, a velocity, an offset and a length head."""

    def __init__(self, weights: dict[str, np.ndarray], record: dict) -> None:
        self.w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self.record = record

    def play(self, notes: list[PlayedNote], role: str, seed: int) -> tuple[list[int], list[float], list[int]]:
        """Each note's velocity, onset offset (in steps) and played length (in steps, ``LENGTHS``),
        sampled note by note (module docstring)."""
        if not notes:
            return [], [], []
        rng = np.random.default_rng(seed)
        w = self.w
        # the first layer's share of the score features, for every note at once; the played context per note
        first = static_features(notes, role) @ w["w1"][:N_STATIC] + w["b1"]
        context_w = w["w1"][N_STATIC:]
        draws = rng.random((len(notes), 3))
        velocities: list[int] = []
        offsets: list[float] = []
        lengths: list[int] = []
        velocity: int | None = None
        offset: float | None = None
        for i in range(len(notes)):
            h = np.maximum(0.0, first[i] + np.asarray(played_context(velocity, offset), dtype=np.float32) @ context_w)
            h = np.maximum(0.0, h @ w["w2"] + w["b2"])
            k = _sample(h @ w["wv"] + w["bv"], draws[i, 0])
            velocity = max(1, min(127, k * VELOCITY_STEP + VELOCITY_STEP // 2))
            if i == 0 or notes[i - 1].onset != notes[i].onset:  # a chord's notes share its lowest note's timing
                offset = OFFSETS[_sample(h @ w["wo"] + w["bo"], draws[i, 1])]
            velocities.append(velocity)
            offsets.append(offset)
            lengths.append(LENGTHS[_sample(h @ w["wl"] + w["bl"], draws[i, 2])])
        return velocities, offsets, lengths


def _sample(logits: np.ndarray, u: float) -> int:
    """The class whose share of the softmax holds ``u`` (a uniform draw in [0, 1))."""
    c = np.cumsum(np.exp(logits - logits.max()))
    return min(len(c) - 1, int(np.searchsorted(c, u * c[-1], side="right")))


def save(path: Path, weights: dict[str, np.ndarray], record: dict) -> None:
    """Weights (float32) and the training record (JSON) in one .npz."""
    np.savez_compressed(path, record=np.frombuffer(json.dumps(record).encode(), dtype=np.uint8),
                        **{k: np.asarray(v, dtype=np.float32) for k, v in weights.items()})


def read(path: Path) -> PerformanceModel:
    with np.load(path) as data:
        record = json.loads(bytes(data["record"]).decode())
        weights = {k: data[k] for k in data.files if k != "record"}
    return PerformanceModel(weights, record)


def checkpoint_path() -> Path:
    override = os.environ.get(CHECKPOINT_ENV)
    return Path(override) if override else Path(__file__).with_name("checkpoints") / CHECKPOINT_NAME


_LOCK = threading.Lock()
_LOADED: dict[Path, PerformanceModel] = {}


def load() -> PerformanceModel:
    """The committed performance model (once per process)."""
    path = checkpoint_path()
    with _LOCK:
        if path not in _LOADED:
            _LOADED[path] = read(path)
        return _LOADED[path]
