"""Train the part model (engine/partmodel.py) on a local POP909 copy.

    nice -n 10 python -m engine.training.train_parts --data /work/data/pop909 --out engine/checkpoints/cadenza-parts.pt

(also `cadenza train --parts`). One CPU thread; it stops at ``--minutes`` or ``--steps``,
whichever comes first, then scores the validation songs per role and writes the checkpoint
(weights in float16, the vocabulary, the config and a record for the model card).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.model.parts import ENERGIES, PHRASE_BARS, ROLES, VOCAB, encode_bar
from engine.training import pop909
from engine.training.schedule import warmup_cosine


@dataclass(frozen=True)
class PartTrainConfig:
    """Training settings; saved in the checkpoint's record."""

    block_size: int = 256
    n_layer: int = 3
    n_head: int = 4
    n_embd: int = 96
    dropout: float = 0.1
    batch_size: int = 16
    learning_rate: float = 1.5e-3
    min_learning_rate: float = 1e-4
    warmup_steps: int = 100
    steps: int = 6000
    minutes: float = 28.0
    seed: int = 1909


@dataclass
class Sequence:
    """One role of one key segment of one song: its header and its bars' tokens."""

    song: int
    role: str
    mode: str
    beats: int
    density: float  # notes per bar
    bars: list[list[int]]


def encode_song(song: pop909.Song) -> list[Sequence]:
    """A song's sequences, one per key segment and role (bars of other meters end a segment)."""
    out = []
    for mode, bars in song.segments:
        for role in ROLES:
            beats = max(set(b.beats for b in bars), key=[b.beats for b in bars].count)
            tokens = [encode_bar(bar.parts.get(role, []), k % PHRASE_BARS, bar.chords) for k, bar in enumerate(bars)]
            notes = sum(len(bar.parts.get(role, [])) for bar in bars)
            if notes == 0:
                continue
            out.append(Sequence(song.number, role, mode, beats, notes / len(bars), tokens))
    return out


def energy_thresholds(sequences: list[Sequence]) -> dict[str, list[float]]:
    """Per role, the density quantiles that split the training songs into ENERGIES bands."""
    out = {}
    for role in ROLES:
        densities = [s.density for s in sequences if s.role == role]
        out[role] = [float(np.quantile(densities, q / ENERGIES)) for q in range(1, ENERGIES)]
    return out


def energy_of(sequence: Sequence, thresholds: dict[str, list[float]]) -> int:
    return int(np.searchsorted(thresholds[sequence.role], sequence.density, side="right"))


def window(sequence: Sequence, start: int, block: int,
           thresholds: dict[str, list[float]]) -> tuple[list[int], list[int]]:
    """Tokens from bar ``start`` up to the block size, and the targets (conditioning ones ignored)."""
    tokens = VOCAB.header(sequence.role, sequence.mode, sequence.beats, energy_of(sequence, thresholds))
    for bar in sequence.bars[start:]:
        if len(tokens) + len(bar) > block + 1:
            break
        tokens = tokens + bar
    if len(tokens) < 7:  # a single over-long bar: cut it
        tokens = (tokens + sequence.bars[start])[: block + 1]
    targets = [t if t not in VOCAB.conditioning else -100 for t in tokens[1:]]
    targets[:4] = [-100] * min(4, len(targets))  # the header is given, not predicted
    return tokens[:-1], targets


def batch(sequences: list[Sequence], rng: np.random.Generator, config: PartTrainConfig,
          thresholds: dict[str, list[float]], weights: np.ndarray):
    import torch

    xs, ys = [], []
    for _ in range(config.batch_size):
        s = sequences[int(rng.choice(len(sequences), p=weights))]
        x, y = window(s, int(rng.integers(len(s.bars))), config.block_size, thresholds)
        xs.append(x)
        ys.append(y)
    length = max(len(x) for x in xs)
    X = torch.zeros(len(xs), length, dtype=torch.long)
    Y = torch.full((len(xs), length), -100, dtype=torch.long)
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        X[i, : len(x)] = torch.tensor(x)
        Y[i, : len(y)] = torch.tensor(y)
    return X, Y


def validation_loss(model, sequences: list[Sequence], config: PartTrainConfig,
                    thresholds: dict[str, list[float]]) -> dict[str, float]:
    """Mean token cross-entropy per role over non-overlapping windows of the validation songs."""
    import torch
    from torch.nn import functional as F

    model.eval()
    sums: dict[str, list[float]] = {r: [0.0, 0.0] for r in ROLES}
    with torch.no_grad():
        for s in sequences:
            start = 0
            while start < len(s.bars):
                x, y = window(s, start, config.block_size, thresholds)
                bars_in = max(1, sum(1 for t in x if t == VOCAB.ids["BAR"]))
                logits, _ = model(torch.tensor([x]))
                target = torch.tensor([y])
                loss = F.cross_entropy(logits.view(-1, logits.size(-1)), target.view(-1), ignore_index=-100,
                                       reduction="sum")
                sums[s.role][0] += float(loss)
                sums[s.role][1] += int((target != -100).sum())
                start += bars_in
    model.train()
    out = {r: v[0] / v[1] for r, v in sums.items() if v[1]}
    total = sum(v[1] for v in sums.values())
    out["all"] = sum(v[0] for v in sums.values()) / max(1, total)
    return out


def encoded_splits(data: Path, limit: int | None = None) -> dict[str, list[Sequence]]:
    """The songs of a local POP909 copy as sequences per split; cached next to the data
    (``parts-encoded-<vocabulary size>.pkl``) since reading 909 MIDI files takes minutes on a busy machine."""
    import pickle

    cache = data / f"parts-encoded-{len(VOCAB)}.pkl"
    if limit is None and cache.exists():
        return pickle.loads(cache.read_bytes())
    by_split: dict[str, list[Sequence]] = {"train": [], "validation": [], "test": []}
    for song in pop909.load(data, limit=limit):
        by_split[pop909.split_of(song.number)] += encode_song(song)
    if limit is None:
        try:
            cache.write_bytes(pickle.dumps(by_split))
        except OSError:
            pass  # a read-only copy: read it again next time
    return by_split


def train(data: Path, out: Path, config: PartTrainConfig, progress=print, limit: int | None = None) -> dict:
    """Train and write the checkpoint; return its record. ``limit``: only the first songs (tests)."""
    import torch

    from engine.model.transformer import ModelConfig, MusicTransformer

    torch.set_num_threads(1)
    torch.manual_seed(config.seed)
    began = time.time()
    by_split = encoded_splits(data, limit)
    train_seqs = by_split["train"]
    thresholds = energy_thresholds(train_seqs)
    bars = np.array([len(s.bars) for s in train_seqs], dtype=float)
    weights = bars / bars.sum()
    songs = {s.song for seqs in by_split.values() for s in seqs}
    progress(f"POP909: {len(songs)} songs, {len(train_seqs)} training sequences, "
             f"{int(bars.sum())} bars per role summed; read in {time.time() - began:.0f} s")
    model_config = ModelConfig(vocab_size=len(VOCAB), block_size=config.block_size, n_layer=config.n_layer,
                               n_head=config.n_head, n_embd=config.n_embd, dropout=config.dropout)
    model = MusicTransformer(model_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.05,
                                  betas=(0.9, 0.95))
    rng = np.random.default_rng(config.seed)
    started = time.time()
    step = 0
    losses: list[float] = []
    while step < config.steps and time.time() - started < config.minutes * 60:
        # the run ends at its step count or its time budget, whichever comes first
        done = max((time.time() - started) / (config.minutes * 60), step / config.steps)
        lr = warmup_cosine(step, config.warmup_steps, done, config.learning_rate, config.min_learning_rate)
        for group in optimizer.param_groups:
            group["lr"] = lr
        X, Y = batch(train_seqs, rng, config, thresholds, weights)
        _, loss = model(X, Y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % 100 == 0:
            progress(f"step {step}  loss {np.mean(losses[-100:]):.3f}  lr {lr:.2e}  "
                     f"{(time.time() - started) / 60:.1f} min")
    train_seconds = time.time() - started
    val = validation_loss(model, by_split["validation"] or by_split["train"][:3], config, thresholds)
    progress("validation loss " + ", ".join(f"{k} {v:.3f}" for k, v in val.items()))
    manifest = json.loads(pop909.MANIFEST.read_text()) if pop909.MANIFEST.exists() else {}
    counted = {split: {"songs": len({s.song for s in seqs}),
                       "notes": int(sum(s.density * len(s.bars) for s in seqs))} for split, seqs in by_split.items()}
    record = {"data": {"name": "POP909", "source": pop909.SOURCE, "licence": pop909.LICENCE,
                       "commit": manifest.get("commit", ""), "splits": counted},
              "train_config": asdict(config), "steps": step, "train_seconds": round(train_seconds, 1),
              "train_loss_last100": float(np.mean(losses[-100:])), "validation_loss": val,
              "energy_thresholds": thresholds, "parameters": model.num_parameters(),
              "command": " ".join(["python -m engine.training.train_parts"] + sys.argv[1:])}
    state = {k: v.half() for k, v in model.state_dict().items() if k != "head.weight"}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save({"model_config": model_config.to_dict(), "state_dict": state, "vocab": VOCAB.names,
                "record": record}, tmp)
    tmp.replace(out)
    return record


def card(record: dict, model_config: dict, name: str) -> str:
    """The model card (markdown) from a checkpoint's own record."""
    splits = record["data"]["splits"]
    val = record["validation_loss"]
    rows = "\n".join(f"| {split} | {v['songs']} | {v['notes']:,} |" for split, v in splits.items())
    config = record["train_config"]
    return f"""# {name}: the part model (melody, bass, comping)

A nanoGPT-shaped decoder (engine/model.py; {model_config['n_layer']} layers, {model_config['n_head']} heads,
d={model_config['n_embd']}, context {model_config['block_size']} tokens, {record['parameters']:,} parameters, stored
as float16) over the bar tokens of engine/partmodel.py: role, mode, meter, energy; per bar its place
in the phrase and two chords; per note onset, pitch (tonic moved to C), length and velocity band.

## Data provenance

| source | licence | works | notes | genres | split |
| --- | --- | ---: | ---: | --- | --- |
| POP909 ({record['data']['source']}, commit `{record['data']['commit'][:12]}`) | {record['data']['licence']} | \
{sum(v['songs'] for v in splits.values())} songs | {sum(v['notes'] for v in splits.values()):,} | Chinese pop \
(ballads, mid-tempo pop) | song number mod 20: 0 validation, 10 test, else train |

| split | songs | notes (melody + bass + comping) |
| --- | ---: | ---: |
{rows}

Bass is the piano accompaniment's lowest line (engine/training/pop909.py), comping the rest of the
piano, melody the MELODY track; beats and downbeats from the dataset's annotations (`beat_midi.txt`),
chords from `chord_midi.txt` (root and triad quality), key from `key_audio.txt`. Song folders whose
key annotation or bar lengths leave fewer than 4 bars in one key are skipped. The files and their
sha256 are in engine/training/pop909_manifest.json. POP909 is not in the repository.

## Training

`{record['command']}` (also `cadenza train --parts --data DIR --out PATH`), seed {config['seed']},
batch {config['batch_size']} windows of up to {config['block_size']} tokens from bar starts, AdamW lr
{config['learning_rate']} cosine to {config['min_learning_rate']}, warm-up {config['warmup_steps']},
dropout {config['dropout']}, one torch thread under `nice` on the shared 2-core machine:
{record['steps']} steps in {record['train_seconds'] / 60:.1f} min; last 100 steps' train loss
{record['train_loss_last100']:.3f}.

## Validation loss (validation songs, all windows, float32 weights before storing)

| role | loss per predicted token |
| --- | ---: |
| melody | {val['melody']:.3f} |
| bass | {val['bass']:.3f} |
| comping | {val['comp']:.3f} |
| all | {val['all']:.3f} |

Chord and phrase tokens are given, not predicted. Energy bands (notes per bar, per role, quartiles
of the training songs): {', '.join(f"{r} {[round(x, 2) for x in t]}" for r, t in record['energy_thresholds'].items())}.

## Limits

POP909 is one genre (Chinese pop ballads arranged for piano): its bass lines are a pianist's left
hand (2-3 notes a bar), its comping broken chords. Band idioms it cannot teach (a disco octave bass,
a reggae skank, a walking bass) keep the style's rhythm (engine/catalog/data/parts.toml) and the model
chooses their pitches. Nearly all of POP909 is in 4/4; other meters are written under the grammar.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(pop909.DEFAULT_DIR), help="a local POP909 copy")
    parser.add_argument("--out", help="checkpoint to write")
    parser.add_argument("--card", metavar="CHECKPOINT", help="print the model card of a checkpoint and stop")
    parser.add_argument("--minutes", type=float, default=PartTrainConfig.minutes)
    parser.add_argument("--steps", type=int, default=PartTrainConfig.steps)
    parser.add_argument("--seed", type=int, default=PartTrainConfig.seed)
    args = parser.parse_args(argv)
    if args.card:
        import torch

        checkpoint = torch.load(args.card, map_location="cpu", weights_only=False)
        print(card(checkpoint["record"], checkpoint["model_config"], Path(args.card).name))
        return 0
    if not args.out:
        parser.error("--out is required to train")
    config = PartTrainConfig(minutes=args.minutes, steps=args.steps, seed=args.seed)
    record = train(Path(args.data), Path(args.out), config, progress=lambda m: print(m, flush=True))
    print(json.dumps(record["validation_loss"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
