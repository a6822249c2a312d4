"""Training the drum model on the Groove MIDI Dataset: `cadenza train --drums`, reproducible from a seed.

Windows of up to ``window_bars`` bars are cut from every training-split recording (a fill
recording is one short window); each batch draws windows at random from a seeded generator,
so the same seed and data give the same checkpoint (one torch thread). Validation loss is the
Groove validation split's, per term (hits, velocity, offset); the test split is left for
engine/evaluation/drums.py. The checkpoint holds float16 weights, the config and the record; it is
rewritten at every validation, so an interrupted run leaves its latest weights.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from engine.model.drums import (
    N_VOICES,
    DrumConfig,
    DrumModel,
    config_dict,
    loss_terms,
    offset_bin,
    step_features,
    velocity_bin,
)
from engine.training.groove import Performance, load
from engine.training.schedule import warmup_cosine


@dataclass
class DrumTrainConfig:
    """How `cadenza train --drums` trains (stored in the checkpoint's record)."""

    seed: int = 1
    steps: int = 1000
    batch_size: int = 48
    window_bars: int = 4
    learning_rate: float = 3e-3
    min_learning_rate: float = 2e-4
    warmup_steps: int = 50
    weight_decay: float = 0.01
    genre_dropout: float = 0.1
    genre_balance: float = 1.0    # below 1, a batch draws a genre with weight (its windows)**genre_balance, then
    #                               a window of it (0 = genres alike); 1 = every window alike, the committed
    #                               checkpoint's way (rock outnumbers blues 70 to 1). 0.5 was tried: not better
    eval_every: int = 200
    threads: int = 1
    primers_per_genre: int = 8    # 2-bar grooves per genre kept in the checkpoint to start generation from
    min_genre_recordings: int = 2  # a genre with fewer training recordings is trained as 'no genre'


@dataclass
class Window:
    """Arrays for one training window (T steps)."""

    events: np.ndarray   # (T, 27) this step's hits, velocity, offset
    steps: np.ndarray    # (T, 18)
    prev: np.ndarray     # (27,) the step before the window
    tempo: float
    genre: int


def performance_arrays(p: Performance) -> tuple[np.ndarray, np.ndarray]:
    """(events (steps, 27), step features (steps, 18)) for a whole recording."""
    n = p.bars * p.steps_per_bar
    events = np.concatenate([p.hits[:n], p.velocity[:n], p.offset[:n]], axis=1).astype(np.float32)
    feats = step_features([p.steps_per_bar] * p.bars, p.fill, p.phrase_start)
    return events, feats


def windows(performances: list[Performance], genres: tuple[str, ...], window_bars: int) -> list[Window]:
    """Windows of ``window_bars`` bars every two bars of each recording (shorter recordings whole)."""
    out = []
    for p in performances:
        events, feats = performance_arrays(p)
        spb = p.steps_per_bar
        genre = genres.index(p.genre) if p.genre in genres else len(genres)
        starts = range(0, max(1, p.bars - window_bars + 1), 2) if p.bars > window_bars else [0]
        for b in starts:
            lo, hi = b * spb, min(p.bars, b + window_bars) * spb
            prev = events[lo - 1] if lo > 0 else np.zeros(3 * N_VOICES, np.float32)
            out.append(Window(events[lo:hi], feats[lo:hi], prev, p.bpm, genre))
    return out


def collate(batch: list[Window], config: DrumConfig) -> dict[str, torch.Tensor]:
    """Pad a list of windows to one tensor batch with a mask."""
    T = max(len(w.events) for w in batch)
    B = len(batch)
    ev = np.zeros((B, T, 3 * N_VOICES), np.float32)
    inp = np.zeros((B, T, 3 * N_VOICES), np.float32)
    st = np.zeros((B, T, batch[0].steps.shape[1]), np.float32)
    mask = np.zeros((B, T), bool)
    for i, w in enumerate(batch):
        n = len(w.events)
        ev[i, :n], st[i, :n], mask[i, :n] = w.events, w.steps, True
        inp[i, 0] = w.prev
        inp[i, 1:n] = w.events[: n - 1]
    hits = ev[..., :N_VOICES] > 0.5
    return {
        "inputs": torch.from_numpy(inp), "steps": torch.from_numpy(st),
        "tempo": torch.tensor([w.tempo for w in batch], dtype=torch.float32),
        "genre": torch.tensor([w.genre for w in batch]),
        "hits": torch.from_numpy(hits), "mask": torch.from_numpy(mask),
        "vel_bin": torch.from_numpy(velocity_bin(ev[..., N_VOICES:2 * N_VOICES], config.velocity_bins)),
        "off_bin": torch.from_numpy(offset_bin(ev[..., 2 * N_VOICES:], config.offset_bins)),
    }


def batch_loss(model: DrumModel, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    logits, _ = model(batch["inputs"], batch["steps"], batch["tempo"], batch["genre"])
    return loss_terms(logits, batch["hits"], batch["vel_bin"], batch["off_bin"], batch["mask"], model.config)


@torch.no_grad()
def evaluate(model: DrumModel, wins: list[Window], batch_size: int = 64) -> dict[str, float]:
    """Mean (hit, velocity, offset) losses over windows, weighted by batch."""
    model.eval()
    totals, n = np.zeros(3), 0
    for i in range(0, len(wins), batch_size):
        chunk = wins[i:i + batch_size]
        terms = batch_loss(model, collate(chunk, model.config))
        totals += np.array([t.item() for t in terms]) * len(chunk)
        n += len(chunk)
    model.train()
    hit, vel, off = totals / max(n, 1)
    return {"hit": float(hit), "velocity": float(vel), "offset": float(off), "total": float(hit * N_VOICES + vel + off)}


def run(data: str | Path, out: str | Path, config: DrumTrainConfig | None = None,
        model_config: DrumConfig | None = None, log=print) -> dict:
    """Train from the Groove folder ``data`` and write the checkpoint to ``out``; return its record."""
    config = config or DrumTrainConfig()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    started = time.time()
    train_perf = load(data, ("train",))
    val_perf = load(data, ("validation",))
    counts: dict[str, int] = {}
    for p in train_perf:
        counts[p.genre] = counts.get(p.genre, 0) + 1
    genres = tuple(sorted(g for g, c in counts.items() if c >= config.min_genre_recordings))
    mc = model_config or DrumConfig()
    mc.genres = genres
    model = DrumModel(mc)
    primer_set = primers(train_perf, genres, config.primers_per_genre, config.seed)
    train_w = windows(train_perf, genres, config.window_bars)
    val_w = windows(val_perf, genres, config.window_bars)
    log(f"drums: {len(train_perf)} training recordings ({sum(p.bars for p in train_perf)} bars, "
        f"{len(train_w)} windows), {len(val_perf)} validation; genres {', '.join(genres)}; "
        f"{sum(p.numel() for p in model.parameters()):,} parameters")
    sampler = GenreSampler([w.genre for w in train_w], config.genre_balance)
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    history: list[dict] = []
    model.train()
    for step in range(1, config.steps + 1):
        lr = _lr(step, config)
        for group in opt.param_groups:
            group["lr"] = lr
        chosen = []
        for i in sampler.draw(rng, config.batch_size):
            w = train_w[i]
            if rng.random() < config.genre_dropout:
                w = Window(w.events, w.steps, w.prev, w.tempo, len(genres))
            chosen.append(w)
        hit, vel, off = batch_loss(model, collate(chosen, mc))
        loss = hit * N_VOICES + vel + off
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % config.eval_every == 0 or step == config.steps:
            val = evaluate(model, val_w)
            history.append({"step": step, "train_loss": float(loss.item()), "val": val})
            log(f"step {step}: train {loss.item():.3f}  validation {val['total']:.3f} "
                f"(hit {val['hit']:.4f}, velocity {val['velocity']:.3f}, offset {val['offset']:.3f})  "
                f"{time.time() - started:.0f}s")
            record = _record(config, out, train_perf, val_perf, counts, model, history, started)
            save(model, {**record, "primers": primer_set, "genre_tempo": tempo_ranges(train_perf)}, out)
    return {**_record(config, out, train_perf, val_perf, counts, model, history, started), "primers": primer_set,
            "genre_tempo": tempo_ranges(train_perf)}


class GenreSampler:
    """Draws window indices genre first: a genre with weight (its window count)**balance, then one of its
    windows uniformly. balance 1 draws every window alike; below 1 the small genres are heard more often
    (so the genre embedding is not mostly rock's)."""

    def __init__(self, genres: list[int], balance: float) -> None:
        if not 0.0 <= balance <= 1.0:
            raise ValueError(f"genre_balance must be 0-1, got {balance}")
        labels = np.asarray(genres)
        self.balance, self.windows = balance, len(labels)
        self.groups = [np.flatnonzero(labels == g) for g in np.unique(labels)]
        sizes = np.array([len(g) for g in self.groups], float)
        self.weights = sizes ** balance / (sizes ** balance).sum()

    def draw(self, rng: np.random.Generator, n: int) -> list[int]:
        if self.balance == 1.0:  # every window alike, drawn as before genre_balance existed (same seed, same run)
            return [int(i) for i in rng.integers(0, self.windows, n)]
        picks = rng.choice(len(self.groups), size=n, p=self.weights)
        return [int(self.groups[k][rng.integers(len(self.groups[k]))]) for k in picks]


def tempo_ranges(performances: list[Performance]) -> dict[str, tuple[float, float]]:
    """Per genre, the slowest and fastest tempo its training recordings were played at."""
    out: dict[str, tuple[float, float]] = {}
    for p in performances:
        lo, hi = out.get(p.genre, (p.bpm, p.bpm))
        out[p.genre] = (min(lo, p.bpm), max(hi, p.bpm))
    return out


PRIMER_BARS = 2


def primers(performances: list[Performance], genres: tuple[str, ...], per_genre: int, seed: int) -> dict:
    """Per genre, up to ``per_genre`` 2-bar grooves (events, float16) from 4/4 beat recordings: bars
    after the first (no count-in) that are not fills. Drawn with the seed, so a run reproduces them."""
    rng = np.random.default_rng([seed, 2])
    out: dict[str, list[np.ndarray]] = {}
    for genre in genres:
        pool = [p for p in performances if p.genre == genre and p.kind == "beat" and p.steps_per_bar == 16
                and p.bars >= PRIMER_BARS + 2]
        chosen: list[np.ndarray] = []
        for i in rng.permutation(len(pool))[: 4 * per_genre]:
            p = pool[i]
            starts = [b for b in range(1, p.bars - PRIMER_BARS) if not p.fill[b:b + PRIMER_BARS].any()]
            if not starts:
                continue
            b = starts[int(rng.integers(len(starts)))]
            events, _ = performance_arrays(p)
            chosen.append(events[b * 16:(b + PRIMER_BARS) * 16].astype(np.float16))
            if len(chosen) == per_genre:
                break
        if chosen:
            out[genre] = chosen
    return out


def add_primers(checkpoint: str | Path, data: str | Path) -> None:
    """Store primers and tempo ranges in a checkpoint trained before they were part of `run` (same seed,
    same draw)."""
    blob = torch.load(str(checkpoint), map_location="cpu", weights_only=False)
    config = DrumTrainConfig(**{k: v for k, v in blob["record"]["train_config"].items()
                                if k in DrumTrainConfig.__dataclass_fields__})
    genres = tuple(blob["config"]["genres"])
    train = load(data, ("train",))
    blob["record"]["primers"] = primers(train, genres, config.primers_per_genre, config.seed)
    blob["record"]["genre_tempo"] = tempo_ranges(train)
    # a record without genre_balance was trained before it existed: every window drawn alike
    blob["record"]["train_config"] = {**asdict(config),
                                      "genre_balance": blob["record"]["train_config"].get("genre_balance", 1.0)}
    tmp = Path(str(checkpoint) + ".tmp")
    torch.save(blob, str(tmp))
    os.replace(tmp, checkpoint)


def _record(config: DrumTrainConfig, out: str | Path, train_perf: list[Performance], val_perf: list[Performance],
            counts: dict[str, int], model: DrumModel, history: list[dict], started: float) -> dict:
    """What the checkpoint says about its training (the model card reads it)."""
    return {
        "data": "Groove MIDI Dataset (Magenta, CC BY 4.0), train split; validation split for the losses",
        "train_config": asdict(config),
        "recordings_train": len(train_perf), "recordings_validation": len(val_perf),
        "bars_train": int(sum(p.bars for p in train_perf)), "bars_validation": int(sum(p.bars for p in val_perf)),
        "genre_recordings_train": counts,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "history": history, "validation": history[-1]["val"] if history else {},
        "train_seconds": time.time() - started,
        "command": (f"cadenza train --drums --data DIR --out {Path(out).name} --steps {config.steps} "
                    f"--seed {config.seed}"
                    + (f" --genre-balance {config.genre_balance:g}" if config.genre_balance != 1.0 else "")),
    }


def save(model: DrumModel, record: dict, out: str | Path) -> None:
    """Write the checkpoint atomically: float16 weights, config, record."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": 1, "kind": "drums", "config": config_dict(model.config),
            "state": {k: v.detach().half() for k, v in model.state_dict().items()}, "record": record}
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    torch.save(blob, str(tmp))
    os.replace(tmp, out)


def _lr(step: int, config: DrumTrainConfig) -> float:
    """``step`` counts from 1 here."""
    done = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return warmup_cosine(step - 1, config.warmup_steps, done, config.learning_rate, config.min_learning_rate)
