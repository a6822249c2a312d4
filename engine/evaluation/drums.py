"""Drum evaluation against held-out Groove performances.

What is measured, per clip's drum track (read as 16th-step grids over the 9-voice kit):
- velocity and onset-offset distributions, compared with the held-out Groove test split by
  overlapping area (the sum over histogram bins of the smaller of the two shares; 1 = identical);
- fills at phrase ends: the share of phrase-end bars (every `DRUM_PHRASE_BARS`th) that the
  Groove fill detector (engine/training/groove.py `bar_flags`) marks as a fill, and the share of
  the other bars it marks;
- bar-to-bar variation: the share of consecutive bars whose grid pattern (which voices hit on which
  steps) differs, and their mean Jaccard distance;
- genre: a softmax-regression classifier trained on the 4/4 beat bars of Groove's validation and test
  splits (neither is seen by the drum model), over the genres that those splits hold from at least
  `CLASSIFIER_MIN_RECORDINGS` recordings by at least two drummers (a genre from one recording is a
  recording detector, and nothing could tell). The real-data bar that generated bars are held to is its
  leave-one-drummer-out accuracy: each drummer's bars are labelled by a classifier trained without that
  drummer. The validation and test splits share drummers' sessions (drummer1/session1 is in all three
  splits), so a classifier trained on one and scored on the other partly recognises the session: the
  earlier test-trained classifier scored latin 0.63 on validation bars and 0.28 on the training split's.
  As a cross-check the reference also keeps its accuracy on the training split's bars (real drummers, not
  in the classifier's data).

The reference (histograms, real-bar figures, classifier weights) is built once from a local
Groove folder (`python -m engine.evaluation.drums build --data /work/data/groove`) into
engine/evaluation/data/drums_reference.npz, so `cadenza eval` needs no dataset.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from engine.config import DRUM_PHRASE_BARS
from engine.training.groove import N_VOICES, STEPS_PER_QUARTER, VOICES, Performance, bar_flags, load

VELOCITY_EDGES = np.linspace(0, 128, 17)   # 16 bins of 8 velocity steps
OFFSET_EDGES = np.linspace(-0.5, 0.5, 21)  # 20 bins of 1/20 step
REFERENCE = "drums_reference.npz"
CLASSIFIER_MIN_RECORDINGS = 3  # held-out beat recordings a genre needs to be a class (and two drummers)
CLASSIFIER_WEIGHT_DECAY = 3e-2  # chosen by the leave-one-drummer-out accuracy on real bars (0.45 against 0.43 at 3e-3)
_VOICE_OF = {pitch: i for i, (_, _, pitches) in enumerate(VOICES) for pitch in pitches}
BAR_STEPS = 16


@dataclass
class DrumGrid:
    """A drum part as steps x voices: hit, velocity 1-127, offset from the step in steps."""

    hits: np.ndarray
    velocity: np.ndarray
    offset: np.ndarray
    steps_per_bar: int

    @property
    def bars(self) -> int:
        return len(self.hits) // self.steps_per_bar


def grid_of(notes: list[tuple[int, int, int]], ticks_per_quarter: int, quarters_per_bar: float, bars: int) -> DrumGrid:
    """(start tick, pitch, velocity) drum notes as a grid; the loudest hit per cell is kept."""
    step_ticks = ticks_per_quarter / STEPS_PER_QUARTER
    spb = max(1, int(round(quarters_per_bar * STEPS_PER_QUARTER)))
    steps = spb * bars
    hits = np.zeros((steps, N_VOICES), bool)
    velocity = np.zeros((steps, N_VOICES), np.float32)
    offset = np.zeros((steps, N_VOICES), np.float32)
    for start, pitch, vel in notes:
        if pitch not in _VOICE_OF:
            continue
        position = start / step_ticks
        step = int(np.floor(position + 0.5))
        if not 0 <= step < steps:
            continue
        v = _VOICE_OF[pitch]
        if hits[step, v] and velocity[step, v] >= vel:
            continue
        hits[step, v], velocity[step, v], offset[step, v] = True, vel, np.clip(position - step, -0.5, 0.4999)
    return DrumGrid(hits, velocity, offset, spb)


def grid_of_performance(p: Performance) -> DrumGrid:
    n = p.bars * p.steps_per_bar
    return DrumGrid(p.hits[:n], p.velocity[:n] * 127, p.offset[:n], p.steps_per_bar)


def histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts, _ = np.histogram(values, edges)
    total = counts.sum()
    return counts / total if total else counts.astype(float)


def overlap(p: np.ndarray, q: np.ndarray) -> float:
    """Overlapping area of two histograms given as shares (1 identical, 0 disjoint)."""
    return float(np.minimum(p, q).sum())


def variation(grid: DrumGrid) -> tuple[float, float]:
    """(share of consecutive bar pairs whose pattern differs, mean Jaccard distance between them)."""
    bars = grid.hits[: grid.bars * grid.steps_per_bar].reshape(grid.bars, -1)
    if len(bars) < 2:
        return 0.0, 0.0
    differ, distances = [], []
    for a, b in zip(bars[:-1], bars[1:], strict=True):
        union = (a | b).sum()
        distances.append(1.0 - (a & b).sum() / union if union else 0.0)
        differ.append(bool((a != b).any()))
    return float(np.mean(differ)), float(np.mean(distances))


def fills(grid: DrumGrid, phrase_bars: int = DRUM_PHRASE_BARS) -> tuple[int, int, int, int]:
    """(phrase-end bars, of them fills, other bars, of them fills) by the Groove fill detector."""
    flags, _ = bar_flags(grid.hits, grid.steps_per_bar, "beat")
    ends = np.array([(b + 1) % phrase_bars == 0 for b in range(len(flags))], bool)
    return int(ends.sum()), int((flags & ends).sum()), int((~ends).sum()), int((flags & ~ends).sum())


def bar_features(grid: DrumGrid) -> np.ndarray:
    """(bars, features) for the genre classifier: 4/4 bars only (16 steps)."""
    if grid.steps_per_bar != BAR_STEPS or grid.bars == 0:
        return np.zeros((0, feature_count()))
    n = grid.bars
    hits = grid.hits[: n * BAR_STEPS].reshape(n, BAR_STEPS, N_VOICES).astype(np.float32)
    vel = grid.velocity[: n * BAR_STEPS].reshape(n, BAR_STEPS, N_VOICES) / 127.0
    off = grid.offset[: n * BAR_STEPS].reshape(n, BAR_STEPS, N_VOICES)
    by_phase = off.reshape(n, 4, 4, N_VOICES) * hits.reshape(n, 4, 4, N_VOICES)
    count = hits.reshape(n, 4, 4, N_VOICES).sum(axis=1)
    phase_offset = by_phase.sum(axis=1) / np.maximum(count, 1)  # (n, 4 phases, voices)
    return np.concatenate([hits.reshape(n, -1), vel.reshape(n, -1), phase_offset.reshape(n, -1),
                           hits.sum(axis=1) / 8.0], axis=1)


def feature_count() -> int:
    return 2 * BAR_STEPS * N_VOICES + 4 * N_VOICES + N_VOICES


@dataclass
class Classifier:
    """Softmax regression over bar features (standardised)."""

    genres: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # (features, genres)
    bias: np.ndarray

    def predict(self, features: np.ndarray) -> np.ndarray:
        z = ((features - self.mean) / self.scale) @ self.weights + self.bias
        return np.array(self.genres)[z.argmax(axis=1)] if len(features) else np.array([], dtype=str)


def train_classifier(features: np.ndarray, labels: np.ndarray, seed: int = 0, steps: int = 400,
                     weight_decay: float = CLASSIFIER_WEIGHT_DECAY) -> Classifier:
    """Fit the genre classifier (torch, full batch, balanced class weights)."""
    import torch

    torch.manual_seed(seed)
    genres = tuple(sorted(set(labels.tolist())))
    y = torch.tensor([genres.index(g) for g in labels])
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-3
    x = torch.tensor((features - mean) / scale, dtype=torch.float32)
    counts = torch.bincount(y, minlength=len(genres)).float()
    w = torch.zeros(x.shape[1], len(genres), requires_grad=True)
    b = torch.zeros(len(genres), requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(x @ w + b, y, weight=counts.sum() / (counts * len(genres)))
        loss = loss + weight_decay * (w ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return Classifier(genres, mean, scale, w.detach().numpy(), b.detach().numpy())


def _beat_grids(performances: list[Performance]) -> list[tuple[str, DrumGrid]]:
    return [(p.genre, grid_of_performance(p)) for p in performances if p.kind == "beat"]


def _drummer(p: Performance) -> str:
    return p.name.split("/")[0]


def _beat_bars(performances: list[Performance]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, genre, drummer) for every 4/4 bar of the beat recordings."""
    feats, genres, drummers = [np.zeros((0, feature_count()))], [], []
    for p in performances:
        if p.kind != "beat" or p.steps_per_bar != BAR_STEPS:
            continue
        f = bar_features(grid_of_performance(p))
        feats.append(f)
        genres += [p.genre] * len(f)
        drummers += [_drummer(p)] * len(f)
    return np.concatenate(feats), np.array(genres), np.array(drummers)


def classifier_genres(performances: list[Performance], min_recordings: int = CLASSIFIER_MIN_RECORDINGS) -> list[str]:
    """The genres the classifier can learn and be checked on: 4/4 beat recordings from at least
    ``min_recordings`` recordings and two drummers."""
    recordings: dict[str, set[str]] = {}
    drummers: dict[str, set[str]] = {}
    for p in performances:
        if p.kind == "beat" and p.steps_per_bar == BAR_STEPS:
            recordings.setdefault(p.genre, set()).add(p.name)
            drummers.setdefault(p.genre, set()).add(_drummer(p))
    return sorted(g for g in recordings if len(recordings[g]) >= min_recordings and len(drummers[g]) >= 2)


def _accuracy(predicted: np.ndarray, labels: np.ndarray, genres) -> dict[str, tuple[int, int]]:
    return {g: (int((predicted[labels == g] == g).sum()), int((labels == g).sum())) for g in genres
            if (labels == g).any()}


def build_reference(data: str | Path, out: Path | None = None) -> dict:
    """Histograms, real-bar figures and the genre classifier from a local Groove folder."""
    test = load(data, ("test",))
    held_out = load(data, ("validation",)) + test
    hits_all = [grid_of_performance(p) for p in test]
    velocities = np.concatenate([g.velocity[g.hits] for g in hits_all])
    offsets = np.concatenate([g.offset[g.hits] for g in hits_all])
    beat_test = _beat_grids(test)
    pairs = [variation(g) for _, g in beat_test if g.bars >= 2]
    fill_counts = np.sum([fills(g) for _, g in beat_test], axis=0)
    # classifier: the held-out splits' beat bars, genres with enough recordings and drummers
    genres = classifier_genres(held_out)
    features, labels, drummers = _beat_bars(held_out)
    keep = np.isin(labels, genres)
    features, labels, drummers = features[keep], labels[keep], drummers[keep]
    clf = train_classifier(features, labels)
    # real figure: leave one drummer out
    predicted = np.empty(len(labels), dtype=object)
    for drummer in np.unique(drummers):
        mine = drummers == drummer
        predicted[mine] = train_classifier(features[~mine], labels[~mine]).predict(features[mine])
    real = _accuracy(predicted, labels, genres)
    # cross-check: real drummers' bars the classifier never saw (the training split)
    train_features, train_labels, _ = _beat_bars(load(data, ("train",)))
    unseen = _accuracy(clf.predict(train_features), train_labels, genres)
    summary = {
        "velocity_hist": histogram(velocities, VELOCITY_EDGES).tolist(),
        "offset_hist": histogram(offsets, OFFSET_EDGES).tolist(),
        "velocity_hits": int(len(velocities)),
        "variation_differ": float(np.mean([p[0] for p in pairs])),
        "variation_jaccard": float(np.mean([p[1] for p in pairs])),
        "phrase_end_fill_share": float(fill_counts[1] / max(fill_counts[0], 1)),
        "other_fill_share": float(fill_counts[3] / max(fill_counts[2], 1)),
        "classifier_train_bars": int(len(labels)),
        "classifier_real_method": "leave one drummer out, validation + test splits",
        "classifier_real_accuracy": {g: r / t for g, (r, t) in real.items() if t},
        "classifier_real_bars": {g: t for g, (_, t) in real.items()},
        "classifier_unseen_accuracy": {g: r / t for g, (r, t) in unseen.items() if t},
        "classifier_unseen_bars": {g: t for g, (_, t) in unseen.items()},
    }
    np.savez_compressed(out or _reference_path(), summary=json.dumps(summary), genres=np.array(clf.genres),
                        mean=clf.mean, scale=clf.scale, weights=clf.weights, bias=clf.bias)
    return summary


def _reference_path() -> Path:
    return Path(str(resources.files("engine.evaluation.data").joinpath(REFERENCE)))


@lru_cache(maxsize=1)
def reference() -> tuple[dict, Classifier]:
    """The committed drum reference (summary, classifier)."""
    blob = np.load(_reference_path())
    clf = Classifier(tuple(str(g) for g in blob["genres"]), blob["mean"], blob["scale"], blob["weights"], blob["bias"])
    return json.loads(str(blob["summary"])), clf


def clip_figures(genre: str | None, grid: DrumGrid, phrase_bars: int = DRUM_PHRASE_BARS) -> dict:
    """One clip's drum figures as counts (pooled over clips by `pool`); JSON-ready. ``phrase_bars``: the
    clip's phrase length (its form's), for counting fills at phrase ends."""
    _, clf = reference()
    var = variation(grid) if grid.bars >= 2 else None
    ends, end_fills, others, other_fills = fills(grid, phrase_bars)
    right = total = 0
    if genre in clf.genres:
        pred = clf.predict(bar_features(grid))
        right, total = int((pred == genre).sum()), len(pred)
    return {
        "genre": genre,
        "velocity_counts": np.histogram(grid.velocity[grid.hits], VELOCITY_EDGES)[0].tolist(),
        "offset_counts": np.histogram(grid.offset[grid.hits], OFFSET_EDGES)[0].tolist(),
        "bars": grid.bars, "bars_differ": var[0] if var else None, "jaccard": var[1] if var else None,
        "phrase_end_bars": ends, "phrase_end_fills": end_fills, "other_bars": others, "other_fills": other_fills,
        "genre_right": right, "genre_bars": total,
    }


@dataclass
class DrumReport:
    """Drum figures pooled over clips."""

    clips: int
    hits: int
    velocity_overlap: float
    offset_overlap: float
    bars_differ: float
    jaccard: float
    phrase_end_fills: tuple[int, int]  # (fills, phrase-end bars)
    other_fills: tuple[int, int]       # (fills, other bars)
    genre_right: int
    genre_bars: int
    real_accuracy: float               # the classifier on held-out real bars of the same genres (bar-weighted)
    compared_right: int = 0            # genre_right/bars over the genres that have held-out real bars
    compared_bars: int = 0
    unseen_accuracy: float = float("nan")  # the classifier on the training split's real bars, weighted alike

    @property
    def compared_accuracy(self) -> float:
        """Generated bars classified right, over the genres the real figure covers (like for like)."""
        return self.compared_right / self.compared_bars if self.compared_bars else float("nan")

    @property
    def genre_accuracy(self) -> float:
        return self.genre_right / self.genre_bars if self.genre_bars else float("nan")


def pool(figures: list[dict]) -> DrumReport:
    """Pool clip figures: histograms summed, variation averaged over clips, counts summed."""
    summary, _ = reference()
    vel = np.sum([f["velocity_counts"] for f in figures], axis=0) if figures else np.zeros(16)
    off = np.sum([f["offset_counts"] for f in figures], axis=0) if figures else np.zeros(20)
    differ = [f["bars_differ"] for f in figures if f["bars_differ"] is not None]
    jaccard = [f["jaccard"] for f in figures if f["jaccard"] is not None]
    real = summary["classifier_real_accuracy"]
    # generated and real compared over the same genres: one with no held-out real bars (reggae has
    # none in Groove's validation split) has nothing to be held to; its own row still shows its figure
    compared = [f for f in figures if f["genre"] in real]
    weights = [(real[f["genre"]], f["genre_bars"]) for f in compared if f["genre_bars"]]
    real_acc = sum(a * n for a, n in weights) / sum(n for _, n in weights) if weights else float("nan")
    unseen = summary.get("classifier_unseen_accuracy", {})
    weights = [(unseen[f["genre"]], f["genre_bars"]) for f in compared if f["genre_bars"] and f["genre"] in unseen]
    unseen_acc = sum(a * n for a, n in weights) / sum(n for _, n in weights) if weights else float("nan")
    return DrumReport(
        clips=len(figures), hits=int(vel.sum()),
        velocity_overlap=overlap(vel / max(vel.sum(), 1), np.array(summary["velocity_hist"])),
        offset_overlap=overlap(off / max(off.sum(), 1), np.array(summary["offset_hist"])),
        bars_differ=float(np.mean(differ)) if differ else float("nan"),
        jaccard=float(np.mean(jaccard)) if jaccard else float("nan"),
        phrase_end_fills=(sum(f["phrase_end_fills"] for f in figures), sum(f["phrase_end_bars"] for f in figures)),
        other_fills=(sum(f["other_fills"] for f in figures), sum(f["other_bars"] for f in figures)),
        genre_right=sum(f["genre_right"] for f in figures), genre_bars=sum(f["genre_bars"] for f in figures),
        compared_right=sum(f["genre_right"] for f in compared), compared_bars=sum(f["genre_bars"] for f in compared),
        real_accuracy=real_acc, unseen_accuracy=unseen_acc)


def grid_of_score(score, quarters_per_bar: float, bars: int, names: set[str] | None = None) -> DrumGrid | None:
    """The drum tracks of a symusic Score (or anything with .tracks of .notes) as one grid; with ``names``,
    only the drum tracks so named (the kit, without the congas or timbales beside it)."""
    notes = [(int(n.time), int(n.pitch), int(n.velocity)) for t in score.tracks
             if t.is_drum and (names is None or t.name in names) for n in t.notes]
    if not notes:
        return None
    return grid_of(notes, score.ticks_per_quarter, quarters_per_bar, bars)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.evaluation.drums")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build engine/evaluation/data/drums_reference.npz from a Groove folder")
    build.add_argument("--data", required=True, metavar="DIR")
    args = parser.parse_args(argv)
    summary = build_reference(args.data)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

