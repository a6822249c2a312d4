"""Musicality metrics of a symbolic clip, as MusPy defines them (Dong et al., ISMIR 2020 LBD).

Five figures the evaluation compares between generated clips and real music:
pitch-class entropy, scale consistency, groove consistency, empty-beat rate and polyphony.
Each follows `muspy.metrics` exactly, including its edge cases (NaN where MusPy returns NaN,
drum tracks left out where MusPy leaves them out, a note ending on a beat line counting for
that beat), so figures here can be compared with published ones; tests check them against
MusPy itself where it is installed. Input is a symusic Score; its ticks per quarter play the
role of MusPy's resolution (time steps per beat).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from symusic import Score

_MAJOR = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], bool)
_MINOR = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0], bool)


@dataclass(frozen=True)
class _Notes:
    time: np.ndarray      # onset ticks
    end: np.ndarray       # onset + duration
    pitch: np.ndarray
    is_drum: np.ndarray   # per note: played on a drum track


def _notes(score: Score) -> _Notes:
    times, ends, pitches, drums = [], [], [], []
    for track in score.tracks:
        if len(track.notes) == 0:
            continue
        arrays = track.notes.numpy()
        times.append(arrays["time"].astype(np.int64))
        ends.append(arrays["time"].astype(np.int64) + arrays["duration"].astype(np.int64))
        pitches.append(arrays["pitch"].astype(np.int64))
        drums.append(np.full(len(arrays["time"]), track.is_drum))
    if not times:
        empty = np.zeros(0, np.int64)
        return _Notes(empty, empty, empty, np.zeros(0, bool))
    return _Notes(np.concatenate(times), np.concatenate(ends), np.concatenate(pitches), np.concatenate(drums))


def _length(notes: _Notes) -> int:
    """MusPy's song length: the latest note end over all tracks (drums included)."""
    return int(notes.end.max()) if len(notes.end) else 0


def _entropy(prob: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(-np.nansum(prob * np.log2(prob)))


def pitch_class_entropy(score: Score) -> float:
    """Shannon entropy (bits) of the pitch-class histogram of pitched notes; NaN if none."""
    notes = _notes(score)
    pcs = notes.pitch[~notes.is_drum] % 12
    if len(pcs) == 0:
        return math.nan
    counts = np.bincount(pcs, minlength=12).astype(float)
    return _entropy(counts / counts.sum())


def scale_consistency(score: Score) -> float:
    """The largest share of pitched notes inside one major or minor scale (24 tried); NaN if none."""
    notes = _notes(score)
    pcs = notes.pitch[~notes.is_drum] % 12
    if len(pcs) == 0:
        return math.nan
    counts = np.bincount(pcs, minlength=12)
    best = 0.0
    for scale in (_MAJOR, _MINOR):
        for root in range(12):
            best = max(best, counts[np.roll(scale, root)].sum() / len(pcs))
    return float(best)


def empty_beat_rate(score: Score) -> float:
    """Share of beats (quarter notes) where no note of any track sounds; NaN if the clip is empty.

    As in MusPy, beat b counts as sounding when a note spans from its onset's beat through the
    beat of its end tick, inclusive.
    """
    notes = _notes(score)
    length = _length(notes)
    if length < 1:
        return math.nan
    resolution = score.ticks_per_quarter
    n_beats = length // resolution + 1
    cover = np.zeros(n_beats + 1, np.int64)
    np.add.at(cover, notes.time // resolution, 1)
    np.add.at(cover, notes.end // resolution + 1, -1)
    sounding = np.count_nonzero(np.cumsum(cover)[:n_beats] > 0)
    return 1.0 - sounding / n_beats


def _covered(intervals: np.ndarray) -> int:
    """Ticks covered by the union of half-open [start, end) intervals, shape (N, 2)."""
    if len(intervals) == 0:
        return 0
    intervals = intervals[np.argsort(intervals[:, 0], kind="stable")]
    total, cur_start, cur_end = 0, int(intervals[0, 0]), int(intervals[0, 1])
    for start, end in intervals[1:]:
        if start > cur_end:
            total += max(0, cur_end - cur_start)
            cur_start, cur_end = int(start), int(end)
        else:
            cur_end = max(cur_end, int(end))
    return total + max(0, cur_end - cur_start)


def polyphony(score: Score) -> float:
    """Mean number of pitches sounding, over the ticks where at least one pitched note sounds."""
    notes = _notes(score)
    pitched = ~notes.is_drum
    spans = np.stack([notes.time[pitched], notes.end[pitched]], axis=1)
    pitches = notes.pitch[pitched]
    denominator = _covered(spans)
    if denominator < 1:
        return math.nan
    numerator = sum(_covered(spans[pitches == p]) for p in np.unique(pitches))
    return numerator / denominator


def groove_consistency(score: Score, measure_ticks: int) -> float:
    """1 - mean Hamming distance between the onset patterns of neighbouring bars (all tracks).

    ``measure_ticks`` is the bar length in ticks (the meter's); NaN with fewer than two bars.
    """
    if measure_ticks < 1:
        raise ValueError(f"measure_ticks must be a positive number of ticks, got {measure_ticks}")
    notes = _notes(score)
    n_measures = _length(notes) // measure_ticks + 1
    if n_measures < 2:
        return math.nan
    patterns = np.zeros((n_measures, measure_ticks), bool)
    patterns[notes.time // measure_ticks, notes.time % measure_ticks] = True
    distance = np.count_nonzero(patterns[:-1] != patterns[1:])
    return 1.0 - distance / (measure_ticks * (n_measures - 1))


def measure_ticks(score: Score) -> int:
    """Bar length in ticks from the score's first time signature (4/4 when it has none)."""
    if len(score.time_signatures):
        ts = score.time_signatures[0]
        return round(score.ticks_per_quarter * 4 * ts.numerator / ts.denominator)
    return score.ticks_per_quarter * 4


METRICS = ("pitch_class_entropy", "scale_consistency", "groove_consistency", "empty_beat_rate", "polyphony")
# MusPy's default resolution (time steps per beat); groove consistency depends on it, so every
# score is measured at this one, whatever its own ticks per quarter.
RESOLUTION = 24


def musicality(score: Score) -> dict[str, float]:
    """All five metrics of one score at MusPy's resolution, by name (groove on the score's bar length)."""
    if score.ticks_per_quarter != RESOLUTION:
        score = score.resample(RESOLUTION, min_dur=1)
    return {
        "pitch_class_entropy": pitch_class_entropy(score),
        "scale_consistency": scale_consistency(score),
        "groove_consistency": groove_consistency(score, measure_ticks(score)),
        "empty_beat_rate": empty_beat_rate(score),
        "polyphony": polyphony(score),
    }


def top_lines(score: Score) -> list[tuple[int, ...]]:
    """Per pitched track, the interval sequence of its top line (highest pitch per onset)."""
    lines = []
    for track in score.tracks:
        if track.is_drum or len(track.notes) < 2:
            continue
        top: dict[int, int] = {}
        for n in track.notes:
            top[int(n.time)] = max(top.get(int(n.time), 0), int(n.pitch))
        pitches = [top[t] for t in sorted(top)]
        lines.append(tuple(b - a for a, b in zip(pitches, pitches[1:], strict=False)))
    return lines
