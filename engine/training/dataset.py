"""Training examples: works as per-bar token arrays, and windows drawn from them.

A work is tokenized once (its voices mapped to slots, see engine/model/tokens.py) and kept as a
list of bars. A training example is a window of 1-16 bars of one work, with the conditioning
prefix computed from that window (key, meter, tempo, style, density, bar count, the voices
kept), transposed by a random interval (key token and every pitch shift together), and with
a random subset of the inner voices dropped, so the model learns to write one to four voices.
Train and validation are split by work, never by window.
"""
from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.model.tokens import SLOTS, Vocab, density_level
from engine.music.analysis import assign_slots, find_key
from engine.music.notes import GridNote
from engine.music.theory import MODES, Key, Meter, pitch_class, spell
from engine.training.corpus import iter_scores, read_index

VALIDATION_PERCENT = 5
MAX_WINDOW_BARS = 16
WINDOW_CHOICES = (1, 2, 4, 4, 6, 8, 8, 8, 12, 16, 16)
TRANSPOSE_RANGE = (-5, 6)  # semitones, inclusive
SAMPLE_ATTEMPTS = 10_000  # random windows tried for one training example before the works are called unusable


@dataclass
class EncodedWork:
    """One work as the trainer sees it."""
    work: str
    style: str
    tonic_pc: int
    mode: str
    meter: tuple[int, int]
    tempo: float | None
    slots: list[int]
    bars: list[np.ndarray]  # token ids, each bar starting with Bar, TimeSig
    notes_per_bar: list[int]

    @property
    def validation(self) -> bool:
        return is_validation(self.work)


def is_validation(work_id: str) -> bool:
    """Stable split by work id: about VALIDATION_PERCENT of works are held out."""
    return zlib.crc32(work_id.encode()) % 100 < VALIDATION_PERCENT


def encode_score(score, vocab: Vocab, work: str, style: str, declared_key: tuple[str, str] | None,
                 tempo: float | None) -> EncodedWork | None:
    """Tokenize one score into bars; None if it has no notes or a meter the vocabulary lacks."""
    from symusic import Score

    pairs = assign_slots(score)
    if not pairs:
        return None
    signature = score.time_signatures[0] if len(score.time_signatures) else None
    meter = (signature.numerator, signature.denominator) if signature else (4, 4)
    try:
        vocab.time_signature(Meter(*meter))
    except KeyError:
        return None
    slotted = Score(score.ticks_per_quarter)
    slotted.time_signatures = score.time_signatures
    events = []
    for track, slot in pairs:
        copy = track.copy()
        copy.program = slot
        copy.is_drum = False
        slotted.tracks.append(copy)
        events.extend(GridNote(int(n.time), int(n.duration), int(n.pitch)) for n in track.notes)
    if declared_key and declared_key[1] in MODES:
        key = Key(declared_key[0], declared_key[1])
    else:
        key = find_key(events)[0]
    sequence = vocab.tokenizer.encode(slotted)
    if isinstance(sequence, list):
        sequence = sequence[0]
    ids = np.asarray(sequence.ids, dtype=np.int32)
    starts = np.flatnonzero(ids == vocab.bar)
    if len(starts) == 0:
        return None
    bars = [ids[a:b] for a, b in zip(starts, list(starts[1:]) + [len(ids)], strict=True)]
    notes = [int(np.sum(vocab.pitch_of[bar] >= 0)) for bar in bars]
    return EncodedWork(work=work, style=style, tonic_pc=pitch_class(key.tonic), mode=key.mode, meter=meter,
                       tempo=tempo, slots=sorted({slot for _, slot in pairs}), bars=bars, notes_per_bar=notes)


def encode_corpus(directory: Path, vocab: Vocab, progress=None) -> list[EncodedWork]:
    """Every cached work of a prepared corpus directory, tokenized."""
    total = len(read_index(directory))
    works = []
    for done, (work, score) in enumerate(iter_scores(directory), 1):
        encoded = encode_score(score, vocab, work.work, work.style, work.key, work.tempo)
        if encoded is not None:
            works.append(encoded)
        if progress:
            progress(done, total)
    return works


def encode_midi_folder(directory: Path, vocab: Vocab) -> list[EncodedWork]:
    """A user's folder of .mid/.midi files, tokenized with style ``user`` (keys detected)."""
    from symusic import Score

    paths = sorted(p for p in Path(directory).rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    if not paths:
        raise ValueError(f"no .mid or .midi files in {directory}")
    works = []
    for path in paths:
        try:
            score = Score(str(path)).resample(480)
        except Exception as error:
            raise ValueError(f"{path} is not a readable MIDI file: {error}") from None
        tempo = float(score.tempos[0].qpm) if len(score.tempos) else None
        encoded = encode_score(score, vocab, f"user:{path.name}", "user", None, tempo)
        if encoded is not None:
            works.append(encoded)
    return works


def _drop_slots(tokens: Iterable[int], keep: set[int], vocab: Vocab) -> list[int]:
    """Remove the notes of voices not in ``keep`` and the positions left empty."""
    program_of = vocab.program_of
    position_of = vocab.position_of
    out: list[int] = []
    skip = 0
    for t in tokens:
        if skip:
            skip -= 1
            continue
        p = program_of[t]
        if p >= 0 and p not in keep:
            skip = 2  # its Pitch and Duration
            continue
        out.append(int(t))
    cleaned: list[int] = []
    for i, t in enumerate(out):
        if position_of[t] >= 0 and (i + 1 >= len(out) or program_of[out[i + 1]] < 0):
            continue
        cleaned.append(t)
    return cleaned


def make_example(work: EncodedWork, start: int, bars: int, keep: set[int], shift: int, vocab: Vocab,
                 block_size: int, tempo_dropout: bool = False) -> tuple[list[int], int] | None:
    """(token ids, prefix length) for a window, or None if even one bar does not fit."""
    while bars >= 1:
        body: list[int] = []
        for bar in work.bars[start:start + bars]:
            body.extend(_drop_slots(bar, keep, vocab) if keep != set(work.slots) else bar.tolist())
        slots = sorted(keep)
        quarters = bars * work.meter[0] * 4 / work.meter[1]
        notes = int(np.sum(vocab.pitch_of[np.asarray(body, dtype=np.int64)] >= 0)) if body else 0
        density = density_level(notes / max(quarters, 1e-9) / len(slots))
        key = Key(spell((work.tonic_pc + shift) % 12, work.mode), work.mode)
        prefix = vocab.prefix(work.style, key, Meter(*work.meter), None if tempo_dropout else work.tempo,
                              density, bars, slots)
        sequence = prefix + body + [vocab.eos]
        if len(sequence) <= block_size + 1:
            if shift:
                array = np.asarray(sequence, dtype=np.int64)
                pitched = vocab.pitch_of[array] >= 0
                array[pitched] += shift
                sequence = array.tolist()
            return sequence, len(prefix)
        bars = bars - max(1, bars // 4)
    return None


def _shift_fits(work: EncodedWork, start: int, bars: int, shift: int, vocab: Vocab) -> bool:
    pitches = [vocab.pitch_of[b] for b in work.bars[start:start + bars]]
    values = np.concatenate(pitches) if pitches else np.array([])
    values = values[values >= 0]
    if len(values) == 0:
        return True
    return values.min() + shift >= 21 and values.max() + shift <= 108


def sample_example(works: list[EncodedWork], weights: np.ndarray, rng: np.random.Generator, vocab: Vocab,
                   block_size: int) -> tuple[list[int], int]:
    """One random training example (window, voice subset, transposition).

    ValueError when SAMPLE_ATTEMPTS draws in a row give no window that fits ``block_size`` (every
    bar of the works is longer than the model's context, even with voices left out).
    """
    for _ in range(SAMPLE_ATTEMPTS):
        work = works[int(rng.choice(len(works), p=weights))]
        bars = min(int(rng.choice(WINDOW_CHOICES)), len(work.bars))
        start = int(rng.integers(0, len(work.bars) - bars + 1))
        keep = set(work.slots)
        if len(work.slots) > 1 and rng.random() < 0.5:
            keep = {0} | {s for s in work.slots if s != 0 and rng.random() < 0.5}
        shift = int(rng.integers(TRANSPOSE_RANGE[0], TRANSPOSE_RANGE[1] + 1))
        if not _shift_fits(work, start, bars, shift, vocab):
            shift = 0
        example = make_example(work, start, bars, keep, shift, vocab, block_size,
                               tempo_dropout=rng.random() < 0.3)
        if example is not None:
            return example
    raise ValueError(f"no training window of the {len(works)} works fits the model's context of {block_size} "
                     f"tokens ({SAMPLE_ATTEMPTS} random windows tried, down to one bar and one voice): give "
                     "sparser music or start from a checkpoint with a longer context")


def validation_examples(works: list[EncodedWork], vocab: Vocab, block_size: int,
                        per_work: int = 2, bars: int = 8, one_voice: bool = False) -> list[tuple[list[int], int]]:
    """Fixed windows of held-out works: all voices (``one_voice``: each voice alone), untransposed,
    from bar 0 and bar 8. A window whose first bar does not fit ``block_size`` is left out."""
    examples = []
    for work in works:
        for keep in ([{slot} for slot in sorted(work.slots)] if one_voice else [set(work.slots)]):
            for k in range(per_work):
                start = k * bars
                if start >= len(work.bars):
                    break
                example = make_example(work, start, min(bars, len(work.bars) - start), keep, 0, vocab, block_size)
                if example is not None:
                    examples.append(example)
    return examples


def collate(examples: list[tuple[list[int], int]], pad: int):
    """Inputs and targets (B, T) as torch tensors; prefix and padding targets are -100."""
    import torch

    length = max(len(seq) for seq, _ in examples) - 1
    inputs = torch.full((len(examples), length), pad, dtype=torch.long)
    targets = torch.full((len(examples), length), -100, dtype=torch.long)
    for row, (seq, prefix_len) in enumerate(examples):
        seq_t = torch.tensor(seq, dtype=torch.long)
        n = len(seq) - 1
        inputs[row, :n] = seq_t[:-1]
        targets[row, :n] = seq_t[1:]
        targets[row, : prefix_len - 1] = -100  # the prefix is given, not predicted
    return inputs, targets


def slots_in(works: list[EncodedWork]) -> dict[int, int]:
    """How many works have each slot (for the model card)."""
    counts = dict.fromkeys(range(SLOTS), 0)
    for work in works:
        for slot in work.slots:
            counts[slot] += 1
    return counts
