"""The part model: melody, bass and comping written bar by bar over a chord plan.

A small nanoGPT-shaped decoder (engine/model.py's MusicTransformer) trained on POP909
(engine/training/pop909.py). One sequence is one part of one song in one key, its tonic moved
to C:

    BOS ROLE MODE METER ENERGY | BAR PHRASE CHORD CHORD (POS PITCH DUR VEL (PITCH DUR VEL)*)* | BAR ...

``PHRASE`` is the bar's place in a four-bar phrase, the two chords are the downbeat's and the
half bar's, ``POS`` a sixteenth step inside the bar, ``DUR`` a length in sixteenths, ``VEL`` a
velocity band. Notes at one onset are written low to high and share one ``POS``.

Writing (``PartModel.write``) masks the logits by that grammar, so every bar has the meter's
steps and ends, and every pitch is in the part's range and the key's scale or the bar's chord;
a rhythm can be given per bar (a motif's onsets and lengths) and the model then chooses only the
pitches and velocities: the learned variation of a motif that form (engine/form.py) asks for.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.config import INFERENCE_THREADS
from engine.errors import check_stop

ROLES = ("melody", "bass", "comp")
MODES = ("major", "minor")
METERS = ("3", "4", "other")      # beats of a quarter-note bar; anything else is "other"
ENERGIES = 4
PHRASE_BARS = 4
QUALITIES = ("maj", "min", "dim", "aug", "sus")
STEPS = 16                       # sixteenth positions in the longest bar the model knows
LOW, HIGH = 21, 108              # piano range, the pitches the model names
DURATIONS = (1, 2, 3, 4, 6, 8, 12, 16)
VELOCITY_BANDS = 8
MAX_NOTES_AT_ONSET = {"melody": 1, "bass": 1, "comp": 5}
MAX_NOTES_PER_BAR = 32
RESERVED = 4 * MAX_NOTES_PER_BAR // 2  # context kept free for the bar being written
CHECKPOINT_ENV = "CADENZA_PART_CHECKPOINT"
CHECKPOINT_NAME = "cadenza-parts.pt"
TEMPERATURE = 0.9
PREFER_BIAS = 1.5
# A melody's logits lose REPEAT_PENALTY for each time a pitch sounded in its last REPEAT_WINDOW notes:
# the small model, like POP909's speech-like verses, otherwise sits on one note for bars (a jazz
# sax played F 14 times a bar).
REPEAT_PENALTY = 0.7
REPEAT_WINDOW = 4  # logits added to a style's colour tones (parts.toml, styles.toml `sevenths`)
TOP_P = 0.92


class Vocab:
    """Token ids for the grammar above."""

    def __init__(self) -> None:
        names = ["PAD", "BOS", "BAR"]
        names += [f"ROLE_{r}" for r in ROLES] + [f"MODE_{m}" for m in MODES] + [f"METER_{m}" for m in METERS]
        names += [f"ENERGY_{e}" for e in range(ENERGIES)] + [f"PHRASE_{p}" for p in range(PHRASE_BARS)]
        names += ["CHORD_N"] + [f"CHORD_{r}_{q}" for r in range(12) for q in QUALITIES]
        names += [f"POS_{s}" for s in range(STEPS)] + [f"PITCH_{p}" for p in range(LOW, HIGH + 1)]
        names += [f"DUR_{d}" for d in DURATIONS] + [f"VEL_{v}" for v in range(VELOCITY_BANDS)]
        self.names = names
        self.ids = {n: i for i, n in enumerate(names)}
        self.pos0, self.pitch0 = self.ids["POS_0"], self.ids[f"PITCH_{LOW}"]
        self.dur0, self.vel0 = self.ids["DUR_1"], self.ids["VEL_0"]
        self.chord0 = self.ids["CHORD_N"]
        self.conditioning = {self.ids[n] for n in names if n.startswith(("CHORD_", "PHRASE_"))}

    def __len__(self) -> int:
        return len(self.names)

    def chord(self, chord: tuple[int, str] | None) -> int:
        return self.ids["CHORD_N"] if chord is None else self.ids[f"CHORD_{chord[0] % 12}_{chord[1]}"]

    def header(self, role: str, mode: str, beats: int, energy: int) -> list[int]:
        meter = str(beats) if str(beats) in METERS else "other"
        return [self.ids["BOS"], self.ids[f"ROLE_{role}"], self.ids[f"MODE_{mode}"], self.ids[f"METER_{meter}"],
                self.ids[f"ENERGY_{min(max(energy, 0), ENERGIES - 1)}"]]

    def bar_header(self, phrase: int, chords: tuple) -> list[int]:
        return [self.ids["BAR"], self.ids[f"PHRASE_{phrase % PHRASE_BARS}"], self.chord(chords[0]),
                self.chord(chords[1])]


VOCAB = Vocab()


def duration_token(length: int) -> int:
    """The nearest duration class (ties to the shorter)."""
    k = int(np.argmin([abs(d - length) for d in DURATIONS]))
    return VOCAB.dur0 + k


def velocity_band(velocity: int) -> int:
    return min(VELOCITY_BANDS - 1, max(0, velocity) * VELOCITY_BANDS // 128)


def band_velocity(band: int) -> int:
    """The velocity in the middle of a band."""
    return int((band + 0.5) * 128 / VELOCITY_BANDS)


def encode_bar(notes, phrase: int, chords: tuple) -> list[int]:
    """One bar's tokens (notes with .step, .length, .pitch, .velocity, sorted by step then pitch)."""
    out = VOCAB.bar_header(phrase, chords)
    last_step = None
    for n in notes:
        if not LOW <= n.pitch <= HIGH or not 0 <= n.step < STEPS:
            continue
        if n.step != last_step:
            out.append(VOCAB.pos0 + n.step)
            last_step = n.step
        out += [VOCAB.pitch0 + n.pitch - LOW, duration_token(n.length), VOCAB.vel0 + velocity_band(n.velocity)]
    return out


@dataclass(frozen=True)
class PlannedBar:
    """What a bar is to be: its place in the phrase, its chords, and optionally a rhythm to keep."""

    phrase: int
    chords: tuple  # two (root pc relative to the tonic, quality) or None
    rhythm: tuple[tuple[int, int], ...] | None = None  # (step, length) per onset the model must keep
    steps: int = STEPS  # sixteenth steps in the bar
    prefer: frozenset[int] = frozenset()  # pitch classes (in the asked key) a style colours with (a seventh)
    pull: tuple[tuple[int, float], ...] = ()  # (pitch class in the asked key, logits added): the key's home tones,
    strong: tuple[int, ...] = (0,)  # ... pulled toward at these steps only (the beat groups' starts)
    voicing: int = 1  # notes at least at every onset (a style's comping chords), as far as the range allows
    moving: bool = False  # a line that keeps moving (a walking bass): repeated pitches are pushed away
    strict: bool = False  # an asked progression: comping plays only its tones, the bass opens on its root,
    # a melody's notes on the beats are its tones
    free_from: int | None = None  # with a rhythm: the step from which the model chooses onsets itself (a
    # player's turn at the end of an idiom's bar); the rhythm's onsets before it are kept


@dataclass(frozen=True)
class WrittenNote:
    """A note the model wrote: bar, step, length in steps, pitch (in the asked key), velocity."""

    bar: int
    step: int
    length: int
    pitch: int
    velocity: int


def default_checkpoint() -> Path:
    named = os.environ.get(CHECKPOINT_ENV)
    return Path(named) if named else Path(__file__).parent / "checkpoints" / CHECKPOINT_NAME


@dataclass
class _Cache:
    """One thread's incremental decoder and the tokens in its key/value cache."""
    decoder: object  # engine.model.transformer.NumpyDecoder (torch is imported only when a model loads)
    fed: list[int] = field(default_factory=list)


class PartModel:
    """The trained part model and its constrained writer."""

    def __init__(self, path: Path) -> None:
        import torch

        from engine.model.transformer import from_checkpoint

        if not path.exists():
            from engine.model.generator import CheckpointMissing

            raise CheckpointMissing(f"part model checkpoint not found: {path} (train one with "
                                    "`cadenza train --parts --out PATH`)")
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        if checkpoint.get("vocab") != VOCAB.names:
            raise ValueError(f"{path} was trained with another part vocabulary")
        self.path = path
        self.record = checkpoint.get("record", {})
        self.model = from_checkpoint(checkpoint)
        self.block = self.model.config.block_size
        # The decoder's key/value cache is per thread: the loaded model is shared by every request
        # in the process, and two requests writing parts at once must not feed one cache (they did,
        # and the same seed then wrote other notes whenever another request ran beside it).
        self._local = threading.local()

    def _cache(self, fresh: bool) -> _Cache:
        """This thread's decoder cache, made on first use; ``fresh`` empties it (a new part begins, so
        its notes never depend on what this thread decoded before)."""
        from engine.model.transformer import NumpyDecoder

        cache = getattr(self._local, "cache", None)
        if cache is None:  # a step in numpy: at this size a torch call's overhead is most of one
            cache = self._local.cache = _Cache(NumpyDecoder(self.model))
        if fresh:
            cache.fed = []
        return cache

    def begin_part(self) -> None:
        """A new part begins on this thread: its notes never depend on what the thread decoded before
        (a part that starts from given bars, as co-creation's do, would otherwise continue a cache
        left by an earlier request with the same opening, and float rounding could change a draw)."""
        self._cache(fresh=True)

    def write(self, role: str, bars: list[PlannedBar], *, mode: str, beats: int, energy: int,
              tonic_pc: int, scale_pcs: set[int], low: int, high: int, seed: int) -> list[WrittenNote]:
        """Notes for ``bars`` in the asked key (tonic ``tonic_pc``), within ``low``-``high``, each bar
        continuing the ones before it (see ``write_bar``)."""
        history: list[list[int]] = []
        out: list[WrittenNote] = []
        for index, planned in enumerate(bars):
            check_stop(f"writing bar {index + 1} of the {role}")  # the request may have been given up
            notes, tokens = self.write_bar(role, planned, history, mode=mode, beats=beats, energy=energy,
                                           tonic_pc=tonic_pc, scale_pcs=scale_pcs, low=low, high=high,
                                           seed=seed + 7919 * index)
            out += [WrittenNote(index, n.step, n.length, n.pitch, n.velocity) for n in notes]
            history.append(tokens)
        return out

    def write_bar(self, role: str, planned: PlannedBar, history: list[list[int]], *, mode: str, beats: int,
                  energy: int, tonic_pc: int, scale_pcs: set[int], low: int, high: int,
                  seed: int) -> tuple[list[WrittenNote], list[int]]:
        """One bar's notes (bar index 0) in the asked key and its tokens (to extend ``history``, the
        part's earlier bars as tokens, oldest first; the oldest are dropped when the context is full).

        The grammar holds whatever the weights: the bar has ``planned.steps`` sixteenth steps (at
        most 16), every pitch lies in ``low``-``high`` and in the key's scale (``scale_pcs``, pitch
        classes in the asked key) or the bar's chords; a ``planned.rhythm`` is kept exactly.
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        steps = planned.steps
        if not 1 <= steps <= STEPS:
            raise ValueError(f"a bar of 1-{STEPS} sixteenth steps is needed, got {steps}")
        if low > high:
            raise ValueError(f"pitch range is empty: low {low} > high {high}")
        shift = tonic_pc if tonic_pc <= 6 else tonic_pc - 12
        rng = np.random.default_rng(seed)
        header = VOCAB.header(role, mode, beats, energy)
        bar_head = VOCAB.bar_header(planned.phrase, planned.chords)
        kept = list(history)
        while kept and len(header) + sum(len(b) for b in kept) + len(bar_head) + RESERVED > self.block:
            kept.pop(0)
        tokens = header + [t for bar in kept for t in bar] + bar_head
        n = len(VOCAB)
        cache = self._cache(fresh=not history)
        logits = self._feed(cache, tokens[-(self.block - RESERVED):])
        allowed_pc = {(pc - tonic_pc) % 12 for pc in scale_pcs}
        for chord in planned.chords:
            if chord is not None:
                allowed_pc |= set(chord_pcs(chord))
        pitch_ok = np.zeros(n, dtype=bool)
        for p in range(LOW, HIGH + 1):
            pitch_ok[VOCAB.pitch0 + p - LOW] = p % 12 in allowed_pc and low <= p + shift <= high
        if not pitch_ok.any():  # a range with no scale tone in it: any pitch in range
            for p in range(LOW, HIGH + 1):
                pitch_ok[VOCAB.pitch0 + p - LOW] = low <= p + shift <= high
        if not pitch_ok.any():
            raise ValueError(f"pitch range {low}-{high} is outside the model's {LOW + shift}-{HIGH + shift}")
        preferred = np.zeros(n, dtype=np.float32)  # on every note
        pulled = np.zeros(n, dtype=np.float32)     # on strong steps only
        pulls = dict(planned.pull)
        for p in range(LOW, HIGH + 1):
            pc = (p + shift) % 12
            pulled[VOCAB.pitch0 + p - LOW] = pulls.get(pc, 0.0)
            if pc in planned.prefer:
                preferred[VOCAB.pitch0 + p - LOW] += PREFER_BIAS
                pitch_ok[VOCAB.pitch0 + p - LOW] |= low <= p + shift <= high
        strong = set(planned.strong)
        chord_ok, root_ok = pitch_ok.copy(), pitch_ok.copy()
        if planned.strict and planned.chords[0] is not None:
            tones = set(chord_pcs(planned.chords[0])) | {(pc - tonic_pc) % 12 for pc in planned.prefer}
            for p in range(LOW, HIGH + 1):
                index = VOCAB.pitch0 + p - LOW
                chord_ok[index] = pitch_ok[index] and p % 12 in tones
                root_ok[index] = pitch_ok[index] and p % 12 == planned.chords[0][0] % 12
            if not chord_ok.any():
                chord_ok = pitch_ok.copy()
            if not root_ok.any():
                root_ok = chord_ok.copy()
        recent = [t - VOCAB.pitch0 + LOW for bar in kept[-2:] for t in bar
                  if VOCAB.pitch0 <= t < VOCAB.pitch0 + HIGH - LOW + 1]  # the melody's last notes
        rhythm = list(planned.rhythm) if planned.rhythm is not None else None
        if rhythm is not None and planned.free_from is not None:  # the idiom stops where the turn begins
            rhythm = [(s, min(length, planned.free_from - s)) for s, length in rhythm if s < planned.free_from]
        bar_tokens = list(bar_head)
        out: list[WrittenNote] = []
        state, pos, last_pitch, at_onset, length = "onset", -1, -1, 0, 1
        forced_length: int | None = None
        while True:
            mask = np.zeros(n, dtype=bool)
            if state == "onset":  # a new onset, another note at this one, or the bar's end
                if rhythm:
                    mask[VOCAB.pos0 + rhythm[0][0]] = True
                elif rhythm is not None and planned.free_from is None:
                    mask[VOCAB.ids["BAR"]] = True
                elif rhythm is not None:  # the idiom's onsets are played: the rest of the bar is the model's
                    mask[VOCAB.ids["BAR"]] = len(out) > 0
                    if len(out) < MAX_NOTES_PER_BAR:
                        mask[VOCAB.pos0 + max(pos + 1, planned.free_from): VOCAB.pos0 + steps] = True
                else:
                    mask[VOCAB.ids["BAR"]] = len(out) > 0  # a part plays in every bar it is asked for
                    if len(out) < MAX_NOTES_PER_BAR:
                        mask[VOCAB.pos0 + pos + 1: VOCAB.pos0 + steps] = True
                if 0 < at_onset < MAX_NOTES_AT_ONSET[role] and len(out) < MAX_NOTES_PER_BAR:
                    above = self._pitch_mask(role, planned, pitch_ok, chord_ok, root_ok, pos, len(out))
                    above[: VOCAB.pitch0 + last_pitch - LOW + 1] = False
                    if 0 < at_onset < planned.voicing and above.any():
                        mask[:] = False  # the chord is not complete yet: only a higher note may follow
                    mask |= above
                if not mask.any():
                    mask[VOCAB.ids["BAR"]] = True
            elif state == "pitch":
                mask = self._pitch_mask(role, planned, pitch_ok, chord_ok, root_ok, pos, len(out))
            elif state == "dur":
                if forced_length is not None:
                    mask[duration_token(forced_length)] = True
                else:
                    mask[VOCAB.dur0: VOCAB.dur0 + len(DURATIONS)] = True
            else:  # velocity
                mask[VOCAB.vel0: VOCAB.vel0 + VELOCITY_BANDS] = True
            scores = np.asarray(logits)
            if state in ("onset", "pitch"):
                scores = scores + preferred + (pulled if pos in strong else 0.0)
                if (role == "melody" or planned.moving) and state == "pitch":
                    for pitch in recent[-REPEAT_WINDOW:]:
                        scores[VOCAB.pitch0 + pitch - LOW] -= REPEAT_PENALTY
            token = sample(scores, mask, rng)
            if token == VOCAB.ids["BAR"]:
                break
            bar_tokens.append(token)
            if state == "onset" and VOCAB.pos0 <= token < VOCAB.pos0 + STEPS:
                pos, at_onset, state = token - VOCAB.pos0, 0, "pitch"
                forced_length = rhythm.pop(0)[1] if rhythm else None
            elif state in ("onset", "pitch"):
                last_pitch, state = token - VOCAB.pitch0 + LOW, "dur"
                recent.append(last_pitch)
            elif state == "dur":
                state, length = "vel", DURATIONS[token - VOCAB.dur0]
            else:
                size = forced_length if forced_length is not None else length
                out.append(WrittenNote(0, pos, max(1, size), last_pitch + shift, band_velocity(token - VOCAB.vel0)))
                at_onset += 1
                state = "onset"
            if cache.decoder.length >= self.block:
                break
            logits = cache.decoder.step(token)
            cache.fed.append(token)
        return out, bar_tokens

    def join_score(self, role: str, *, mode: str, beats: int, energy: int, before: list[list[int]],
                   drafts: list[list[list[int]]], after: list[list[int]]) -> list[float]:
        """How likely the model finds the bars ``after`` (token lists) once it has read ``before`` and each
        draft's bars: the mean log-probability of the after-bars' predicted tokens (their bar, phrase and
        chord tokens are given, not scored), one number per draft, all drafts in one batched pass. The
        oldest ``before`` bars are dropped to fit the context."""
        import torch

        header = VOCAB.header(role, mode, beats, energy)
        rows, starts = [], []
        for draft in drafts:
            tail = [t for bar in draft + after for t in bar]
            kept = list(before)
            while kept and len(header) + sum(len(b) for b in kept) + len(tail) > self.block:
                kept.pop(0)
            head = header + [t for bar in kept + draft for t in bar]
            row = (head + tail)[: self.block]
            rows.append(row)
            starts.append(len(head))
        width = max(len(r) for r in rows)
        idx = torch.tensor([r + [VOCAB.ids["PAD"]] * (width - len(r)) for r in rows])
        with torch.no_grad():
            logp = torch.log_softmax(self.model(idx)[0].float(), dim=-1)
        scores = []
        for k, row in enumerate(rows):
            picked = [float(logp[k, i - 1, row[i]]) for i in range(starts[k], len(row))
                      if row[i] not in VOCAB.conditioning and row[i] != VOCAB.ids["BAR"]]
            scores.append(float(np.mean(picked)) if picked else float("nan"))
        return scores

    @staticmethod
    def _pitch_mask(role: str, planned: PlannedBar, pitch_ok: np.ndarray, chord_ok: np.ndarray,
                    root_ok: np.ndarray, pos: int, written: int) -> np.ndarray:
        """The pitches allowed for the next note (an asked progression narrows them: ``PlannedBar.strict``)."""
        if planned.strict:
            if role == "comp" or (role == "melody" and pos % 4 == 0):
                return chord_ok.copy()
            if role == "bass" and written == 0:
                return root_ok.copy()
        return pitch_ok.copy()

    @staticmethod
    def _feed(cache: _Cache, tokens: list[int]):
        """The logits after ``tokens``: continuing the decoder's cache when it holds their beginning
        (the part's bars so far), else starting over with one batched pass."""
        fed = cache.fed
        if fed and len(fed) < len(tokens) and tokens[: len(fed)] == fed:
            logits = None
            for token in tokens[len(fed):]:
                logits = cache.decoder.step(token)
            cache.fed = list(tokens)
            return logits
        cache.fed = list(tokens)
        return cache.decoder.reset(tokens)


def chord_pcs(chord: tuple[int, str]) -> tuple[int, ...]:
    """Pitch classes of a (root, quality) chord."""
    root, quality = chord
    third = {"maj": 4, "min": 3, "dim": 3, "aug": 4, "sus": 5}[quality]
    fifth = {"dim": 6, "aug": 8}.get(quality, 7)
    return root % 12, (root + third) % 12, (root + fifth) % 12


def sample(logits: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
           temperature: float = TEMPERATURE, top_p: float = TOP_P) -> int:
    """A token drawn from the masked logits with nucleus sampling (the mask is never empty)."""
    z = np.where(mask, logits / temperature, -np.inf)
    z = z - z.max()
    p = np.exp(z)
    p /= p.sum()
    order = np.argsort(-p)
    cumulative = np.cumsum(p[order])
    keep = order[: int(np.searchsorted(cumulative, top_p)) + 1]
    q = p[keep] / p[keep].sum()
    return int(keep[rng.choice(len(keep), p=q)])


@lru_cache(maxsize=2)
def _load(path: str) -> PartModel:
    import torch

    torch.set_num_threads(INFERENCE_THREADS)
    return PartModel(Path(path))


def load(path: Path | None = None) -> PartModel:
    """The part model, loaded once per process."""
    return _load(str(path or default_checkpoint()))
