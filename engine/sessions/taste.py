"""A taste that learns: features of a take, a logistic preference model, steering by reasons.

Every verdict in a session is a training example: keep = 1, reject = 0, a rating 1-5 = a soft
label, and a kept take whose parent was rejected also a pairwise (Bradley-Terry) example on the
feature difference. The model is refitted from the session's verdicts after each one (a few
dozen examples, a millisecond or so). A reject's reason ("too busy", "darker", "less drums") is
matched by sentence embedding against described directions in feature space and steers the next
ranking directly, before enough verdicts exist to learn it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from symusic import Score

from engine.config import INFERENCE_THREADS, TICKS_PER_QUARTER
from engine.music.analysis import assign_slots

FEATURES = ("density", "register", "syncopation", "velocity_range", "repetition", "drum_density", "likelihood")
# Rough centre and spread of each feature over generated takes: features are standardised by them.
FEATURE_SCALE = {"density": (3.0, 2.0), "register": (60.0, 8.0), "syncopation": (0.3, 0.2),
                 "velocity_range": (30.0, 15.0), "repetition": (0.5, 0.3), "drum_density": (8.0, 5.0),
                 "likelihood": (-2.5, 0.6)}
FEATURE_WORDS = {"density": ("busier", "sparser"), "register": ("higher", "lower"),
                 "syncopation": ("more syncopated", "squarer on the beat"),
                 "velocity_range": ("more dynamic", "more even in loudness"),
                 "repetition": ("more repetitive", "less repetitive"), "drum_density": ("more drums", "fewer drums"),
                 "likelihood": ("what the model finds likely", "what the model finds surprising")}
# Reasons a composer gives, and the direction each points to (feature, sign).
REASON_DIRECTIONS = {
    "too busy, too many notes, cluttered": ("density", -1), "too sparse, too empty, needs more notes": ("density", 1),
    "darker, lower, too bright, too high": ("register", -1), "brighter, higher, too dark, too low": ("register", 1),
    "less drums, drums too loud, too much percussion": ("drum_density", -1),
    "more drums, needs more groove, more percussion": ("drum_density", 1),
    "too repetitive, boring, monotonous": ("repetition", -1),
    "too random, needs a hook, more repetition": ("repetition", 1),
    "too square, stiff, needs syncopation": ("syncopation", 1), "too syncopated, too jumpy": ("syncopation", -1),
    "too flat, lifeless dynamics": ("velocity_range", 1), "too uneven, dynamics jump around": ("velocity_range", -1),
}
REASON_MATCH = 0.45     # cosine similarity a reason needs to steer
STEER_WEIGHT = 1.0      # how strongly one reason steers, in standardised feature units
L2 = 0.5
FIT_STEPS = 200
LEARNING_RATE = 0.3
DEFAULT_CANDIDATES = 4


def features(score: Score, meter_quarters: float = 4.0) -> dict[str, float]:
    """What the taste model sees of a take: density, register, syncopation, loudness range, repetition."""
    bar = round(meter_quarters * TICKS_PER_QUARTER)
    pitched = [n for t in score.tracks if not t.is_drum for n in t.notes]
    drums = [n for t in score.tracks if t.is_drum for n in t.notes]
    end = max((n.time + n.duration for t in score.tracks for n in t.notes), default=bar)
    bars = max(1, -(-end // bar))
    parts = max(1, sum(1 for t in score.tracks if not t.is_drum and len(t.notes)))
    onsets = [n.time for n in pitched]
    off_beat = sum(1 for t in onsets if t % TICKS_PER_QUARTER) / max(1, len(onsets))
    velocities = [n.velocity for n in pitched] or [0]
    by_bar: dict[int, list[tuple[int, int]]] = {}  # one pass over the notes, not one per bar
    for n in pitched:
        by_bar.setdefault(n.time // bar, []).append((n.time % bar, n.pitch))
    seen: set[tuple] = set()
    repeated = 0
    for b in sorted(by_bar):
        pattern = tuple(sorted(by_bar[b]))
        repeated += pattern in seen
        seen.add(pattern)
    repeated = repeated / max(1, bars - 1)
    return {"density": len(pitched) / bars / parts, "register": float(np.mean([n.pitch for n in pitched])) if pitched
            else 60.0, "syncopation": off_beat,
            "velocity_range": float(np.percentile(velocities, 90) - np.percentile(velocities, 10)),
            "repetition": repeated, "drum_density": len(drums) / bars}


def model_likelihood(score: Score, spec) -> float | None:
    """Mean log-probability per token of the take's pitched voices under the generator (first block only).

    None when the take has no pitched notes, its meter is outside the vocabulary, or no checkpoint loads.
    """
    import torch
    from symusic import Note, TimeSignature, Track

    from engine.model.generator import load, style_settings

    try:
        generator = load()
        vocab = generator.vocab
        vocab.time_signature(spec.meter)
    except Exception:  # no checkpoint, or a meter the model does not know: the feature stays neutral
        return None
    pairs = assign_slots(score)
    if not pairs:
        return None
    slotted = Score(TICKS_PER_QUARTER)
    slotted.time_signatures.append(TimeSignature(0, spec.meter.numerator, spec.meter.denominator))
    for track, slot in pairs:
        copy = Track(program=slot)
        for n in track.notes:
            copy.notes.append(Note(n.time, n.duration, n.pitch, n.velocity))
        slotted.tracks.append(copy)
    sequence = vocab.tokenizer.encode(slotted)
    ids = list((sequence[0] if isinstance(sequence, list) else sequence).ids)
    settings = style_settings(spec.style)
    prefix = vocab.prefix(settings["model_style"], spec.key, spec.meter, spec.tempo_bpm, int(settings["density"]),
                          spec.bars, [slot for _, slot in pairs])
    tokens = (prefix + ids)[: generator.model.config.block_size]
    if len(tokens) <= len(prefix):
        return None

    with torch.inference_mode(), generator._lock:  # one model user at a time, on one thread, as generate does
        threads = torch.get_num_threads()
        torch.set_num_threads(INFERENCE_THREADS)
        try:
            logits, _ = generator.model(torch.tensor([tokens]))
        finally:
            torch.set_num_threads(threads)
        logp = torch.log_softmax(logits[0, :-1].float(), dim=-1)
        picked = logp[torch.arange(len(tokens) - 1), torch.tensor(tokens[1:])]
    return float(picked[len(prefix) - 1:].mean())


def vector(feats: dict[str, float | None]) -> np.ndarray:
    """The standardised features; a missing or None feature (the model could not score the take) is neutral."""
    values = [feats.get(name) for name in FEATURES]
    return np.array([0.0 if value is None else (value - FEATURE_SCALE[name][0]) / FEATURE_SCALE[name][1]
                     for name, value in zip(FEATURES, values, strict=True)])


@dataclass
class Taste:
    """A session's learned preference: weights over standardised features, plus reason steering."""
    weights: np.ndarray = field(default_factory=lambda: np.zeros(len(FEATURES)))
    bias: float = 0.0
    steer: np.ndarray = field(default_factory=lambda: np.zeros(len(FEATURES)))
    examples: int = 0
    reasons: list[str] = field(default_factory=list)

    def score(self, feats: dict[str, float]) -> float:
        x = vector(feats)
        return float(self.weights @ x + self.bias + self.steer @ x)

    def rank(self, candidates: list[dict[str, float]]) -> list[int]:
        """Candidate indices, best first (ties keep their order)."""
        scores = [self.score(f) for f in candidates]
        return sorted(range(len(candidates)), key=lambda i: -scores[i])

    def describe(self) -> list[str]:
        """What it has learned, in words."""
        if self.examples == 0 and not self.steer.any():
            return ["nothing yet: keep, reject or rate some takes"]
        lines = [f"learned from {self.examples} examples (verdicts, and pairs where a kept take replaced "
                 "a rejected one)"]
        total = self.weights + self.steer
        for i in np.argsort(-np.abs(total)):
            if abs(total[i]) < 0.1:
                continue
            more, less = FEATURE_WORDS[FEATURES[i]]
            strength = "strongly " if abs(total[i]) > 1.0 else ""
            lines.append(f"{strength}prefers {more if total[i] > 0 else less} ({total[i]:+.2f})")
        for reason in self.reasons[-3:]:
            lines.append(f"heard: {reason!r}")
        return lines


def _reason_direction(reason: str) -> np.ndarray:
    """The feature direction a reason points to (zeros when none matches or embeddings are unavailable)."""
    direction = np.zeros(len(FEATURES))
    if not reason.strip():
        return direction
    try:
        from engine.understand.embed import rank

        anchors = tuple(REASON_DIRECTIONS)
        similarity = rank(reason, anchors)
    except Exception:  # no text model on this machine: reasons are kept but do not steer
        return direction
    best = int(np.argmax(similarity))
    if similarity[best] >= REASON_MATCH:
        name, sign = REASON_DIRECTIONS[anchors[best]]
        direction[FEATURES.index(name)] = sign * STEER_WEIGHT
    return direction


def fit(verdicts: list[dict], parents: dict[str, dict] | None = None, use_reasons: bool = True) -> Taste:
    """The taste from a session's verdicts (as TakeStore.verdicts returns them), oldest first.

    ``parents`` maps a take id to its parent's verdict record; a kept take with a rejected parent
    adds a pairwise example.
    """
    rows, labels = [], []
    taste = Taste()
    latest: dict[str, dict] = {}
    for v in verdicts:
        latest[v["take"]] = v
        if v["verdict"] == "reject" and v["reason"]:
            taste.reasons.append(v["reason"])
            if use_reasons:
                taste.steer += _reason_direction(v["reason"])
    for v in latest.values():
        x = vector(v["features"])
        if v["verdict"] == "keep":
            rows.append(x), labels.append(1.0)
        elif v["verdict"] == "reject":
            rows.append(x), labels.append(0.0)
        elif v["verdict"] == "rate":
            rows.append(x), labels.append((v["rating"] - 1) / 4)
        parent = (parents or {}).get(v["take"])
        if parent and v["verdict"] == "keep" and parent.get("verdict") == "reject":
            rows.append(x - vector(parent["features"])), labels.append(1.0)
    taste.examples = len(rows)
    if rows:
        X, y = np.array(rows), np.array(labels)
        w, b = np.zeros(X.shape[1]), 0.0
        for _ in range(FIT_STEPS):
            p = 1 / (1 + np.exp(-(X @ w + b)))
            w -= LEARNING_RATE * (X.T @ (p - y) / len(y) + L2 * w / len(y))
            b -= LEARNING_RATE * float(np.mean(p - y))
        taste.weights, taste.bias = w, b
    taste.steer = np.clip(taste.steer, -2 * STEER_WEIGHT, 2 * STEER_WEIGHT)
    return taste
