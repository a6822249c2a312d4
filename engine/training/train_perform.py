"""Fit the performance model (engine/model/perform.py) on a local POP909 copy.

    nice -n 10 python -m engine.training.train_perform --data /work/data/pop909 \
        --out engine/model/checkpoints/cadenza-perform.npz

Every melody, bass and comping note of the train songs (engine/training/pop909.py) is one example:
its score features, the previous note's velocity and timing as played, and as targets its velocity
class, its length class and, for an onset's lowest note, its onset offset class (a chord's notes share their timing;
notes off their step by more than ``OFFSET_LIMIT`` are rhythm, a triplet, and give no timing
target). One torch thread; the validation songs are scored per role against the training data's
marginal (each role's velocity and offset counts at its bar's level, length counts at the steps to the
next onset).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.model import perform
from engine.training import pop909


@dataclass(frozen=True)
class PerformTrainConfig:
    """Training settings; saved in the checkpoint's record."""

    hidden: int = 128
    batch_size: int = 1024
    learning_rate: float = 2e-3
    epochs: int = 8
    weight_decay: float = 1e-4
    seed: int = 909


def examples(songs: list[pop909.Song]) -> tuple[dict[str, tuple[np.ndarray, ...]], np.ndarray]:
    """Per role: features (teacher-forced played context), velocity class targets, offset targets (-100:
    none), length class targets; and every note's offset class (-1: off its step by rhythm)."""
    out: dict[str, list] = {r: [[], [], [], []] for r in perform.ROLES}
    raw: list[int] = []  # every note's offset class (-1: off its step by rhythm), for the card
    for song in songs:
        for _, bars in song.segments:
            steps = [b.beats * pop909.STEPS_PER_BEAT for b in bars]
            for role in perform.ROLES:
                notes = perform.flatten([b.parts.get(role, []) for b in bars], steps)
                if not notes:
                    continue
                static = perform.static_features(notes, role)
                context = np.zeros((len(notes), 3), dtype=np.float32)
                fine = [min(127, n.velocity) // perform.VELOCITY_STEP for n in notes]
                classes = [perform.offset_class(n.offset) for n in notes]
                raw += [-1 if c is None else c for c in classes]
                # timing is per onset (perform.py): only an onset's lowest note is a timing example
                targets = [c if i == 0 or notes[i - 1].onset != n.onset else None
                           for i, (c, n) in enumerate(zip(classes, notes, strict=True))]
                for i in range(1, len(notes)):
                    previous = classes[i - 1]
                    context[i] = perform.played_context(notes[i - 1].velocity, None if previous is None
                                                        else perform.OFFSETS[previous])
                out[role][0].append(np.concatenate([static, context], axis=1))
                out[role][1].append(np.asarray(fine, dtype=np.int64))
                out[role][2].append(np.asarray([-100 if c is None else c for c in targets], dtype=np.int64))
                out[role][3].append(np.asarray([perform.length_class(n.length) for n in notes], dtype=np.int64))
    return {r: tuple(np.concatenate(v) for v in vs) for r, vs in out.items() if vs[0]}, np.asarray(raw)


def _ioi(x: np.ndarray) -> np.ndarray:
    """Steps to the next onset (capped at 16) read back from the features."""
    return np.minimum(16, np.rint(2 ** (4 * x[:, perform.IOI_COLUMN]) - 1)).astype(int)


def marginal_loss(train: dict, valid: dict) -> dict[str, dict[str, float]]:
    """The baseline: each role's training counts as the prediction (add-one smoothed): velocity and offset
    at the bar's level (8 levels), length at the steps to the next onset."""
    out = {}
    for role, (x, v, o, n) in valid.items():
        tx, tv, to, tn = train[role]
        ti, vi = _ioi(tx), _ioi(x)
        ll = 0.0
        for k in range(17):
            counts = np.bincount(tn[ti == k], minlength=len(perform.LENGTHS)) + 1.0
            ll -= np.log((counts / counts.sum())[n[vi == k]]).sum()
        tb, vb = np.minimum(7, (tx[:, 3] * 8).astype(int)), np.minimum(7, (x[:, 3] * 8).astype(int))
        lv, lo, n_o = 0.0, 0.0, 0
        for b in range(8):
            counts_v = np.bincount(tv[tb == b], minlength=perform.VELOCITY_CLASSES) + 1.0
            counts_o = np.bincount(to[(tb == b) & (to >= 0)], minlength=len(perform.OFFSETS)) + 1.0
            pv, po = counts_v / counts_v.sum(), counts_o / counts_o.sum()
            lv -= np.log(pv[v[vb == b]]).sum()
            keep = (vb == b) & (o >= 0)
            lo -= np.log(po[o[keep]]).sum()
            n_o += int(keep.sum())
        out[role] = {"velocity": lv / len(v), "offset": lo / max(1, n_o), "length": ll / len(n)}
    return out


def build(hidden: int):
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l1 = torch.nn.Linear(perform.N_FEATURES, hidden)
            self.l2 = torch.nn.Linear(hidden, hidden)
            self.v = torch.nn.Linear(hidden, perform.VELOCITY_CLASSES)
            self.o = torch.nn.Linear(hidden, len(perform.OFFSETS))
            self.n = torch.nn.Linear(hidden, len(perform.LENGTHS))

        def forward(self, x):
            h = torch.relu(self.l2(torch.relu(self.l1(x))))
            return self.v(h), self.o(h), self.n(h)

    return Net()


def losses(net, data: dict) -> dict[str, dict[str, float]]:
    import torch
    from torch.nn import functional as F

    out = {}
    with torch.no_grad():
        for role, (x, v, o, n) in data.items():
            lv, lo, ln = net(torch.from_numpy(x))
            out[role] = {"velocity": float(F.cross_entropy(lv, torch.from_numpy(v))),
                         "offset": float(F.cross_entropy(lo, torch.from_numpy(o), ignore_index=-100)),
                         "length": float(F.cross_entropy(ln, torch.from_numpy(n)))}
    return out


def train(data_dir: Path, out: Path, config: PerformTrainConfig, limit: int | None = None,
          command: str = "") -> dict:
    import torch
    from torch.nn import functional as F

    torch.set_num_threads(1)
    torch.manual_seed(config.seed)
    began = time.time()
    train_songs = pop909.load(data_dir, split="train", limit=limit)
    valid_songs = pop909.load(data_dir, split="validation", limit=limit)
    (tr, raw), (va, _) = examples(train_songs), examples(valid_songs)
    read_s = time.time() - began
    print(f"read {len(train_songs)} train / {len(valid_songs)} validation songs in {read_s:.0f} s: "
          + ", ".join(f"{r} {len(tr[r][1])}" for r in tr), file=sys.stderr)
    x = np.concatenate([tr[r][0] for r in tr])
    v = np.concatenate([tr[r][1] for r in tr])
    o = np.concatenate([tr[r][2] for r in tr])
    n = np.concatenate([tr[r][3] for r in tr])
    features, vel, off, held = torch.from_numpy(x), torch.from_numpy(v), torch.from_numpy(o), torch.from_numpy(n)
    net = build(config.hidden)
    opt = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    steps = config.epochs * (len(features) // config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.learning_rate, total_steps=steps)
    gen = torch.Generator().manual_seed(config.seed)
    step = 0
    for epoch in range(config.epochs):
        order = torch.randperm(len(features), generator=gen)
        for k in range(len(features) // config.batch_size):
            idx = order[k * config.batch_size:(k + 1) * config.batch_size]
            lv, lo, ln = net(features[idx])
            loss = (F.cross_entropy(lv, vel[idx]) + F.cross_entropy(lo, off[idx], ignore_index=-100)
                    + F.cross_entropy(ln, held[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
        net.eval()
        print(f"epoch {epoch + 1}: {json.dumps(losses(net, va))}", file=sys.stderr)
        net.train()
    net.eval()
    valid = losses(net, va)
    record = {
        "config": asdict(config), "steps": step, "minutes": round((time.time() - began) / 60, 1),
        "songs": {"train": len(train_songs), "validation": len(valid_songs)},
        "notes": {"train": {r: int(len(tr[r][1])) for r in tr}, "validation": {r: int(len(va[r][1])) for r in va}},
        "timed_share": {"train": float((raw >= 0).mean())},
        "on_grid_share": {"train": float((raw == perform.OFFSETS.index(0.0)).mean())},
        "validation": valid, "marginal": marginal_loss(tr, va),
        "command": command or "python -m engine.training.train_perform " + " ".join(sys.argv[1:]),
    }
    weights = {"w1": net.l1.weight.detach().numpy().T, "b1": net.l1.bias.detach().numpy(),
               "w2": net.l2.weight.detach().numpy().T, "b2": net.l2.bias.detach().numpy(),
               "wv": net.v.weight.detach().numpy().T, "bv": net.v.bias.detach().numpy(),
               "wo": net.o.weight.detach().numpy().T, "bo": net.o.bias.detach().numpy(),
               "wl": net.n.weight.detach().numpy().T, "bl": net.n.bias.detach().numpy()}
    perform.save(out, weights, record)
    return record


TARGETS = ("velocity", "offset", "length")


def card(record: dict) -> str:
    """The model card (engine/model/checkpoints/cadenza-perform.md) from a checkpoint's record."""
    c = record["config"]
    notes = record["notes"]
    rows = "\n".join(f"| {role} | " + " | ".join(f"{record[kind][role][target]:.3f}" for target in TARGETS
                                                 for kind in ("validation", "marginal")) + " |"
                     for role in record["validation"])
    train_notes = sum(notes["train"].values())
    commit = json.loads(pop909.MANIFEST.read_text())["commit"][:12]
    provenance = (f"| POP909 ({pop909.SOURCE}, commit `{commit}`) | {pop909.LICENCE} | "
                  f"{record['songs']['train']} songs (train), {record['songs']['validation']} (validation) | "
                  f"{train_notes:,} (train: melody {notes['train']['melody']:,}, bass {notes['train']['bass']:,}, "
                  f"comping {notes['train']['comp']:,}) | Chinese pop (ballads, mid-tempo pop) | "
                  "song number mod 20: 0 validation, 10 test, else train (engine/training/pop909.py) |")
    return f"""# cadenza-perform.npz: the performance model (velocity, timing and length of pitched notes)

A small network (engine/model/perform.py: {perform.N_FEATURES} features, two hidden ReLU layers of
{c['hidden']}, a head of {perform.VELOCITY_CLASSES} velocity classes, one of {len(perform.OFFSETS)} onset
offsets from -0.15 to +0.15 sixteenth steps and one of {len(perform.LENGTHS)} lengths
{perform.LENGTHS} in steps; float32 weights and this record in one .npz) that plays the notes the part
model writes: per note its velocity, its onset's offset from the grid and how long it is held, from
its role, the written level of its bar and the bar before, its place in the beat, bar and phrase, its
chord, register, melodic step, the onsets around it, and the previous note as played. Timing is per
onset (a chord's notes share it).

## Data provenance

| source | licence | works | notes | genres | split |
| --- | --- | ---: | ---: | --- | --- |
{provenance}

Velocities are the MIDI's as played. Timing: each onset's distance from its sixteenth on the
annotated beats, with the track's median distance (the beat annotation's own shift) taken out. Of
the training notes {record['timed_share']['train']:.1%} lie within {perform.OFFSET_LIMIT} steps of a
sixteenth (the others are triplets and other rhythm: no timing target) and
{record['on_grid_share']['train']:.1%} sit on it (nearest offset class 0): POP909's MIDI was aligned to
the beats, so what it teaches about timing is that these players were nearly always on the grid.

## Training

`{record['command']}` (`python -m engine.training.train_perform` takes the same arguments), seed
{c['seed']}, batch {c['batch_size']}, AdamW lr {c['learning_rate']} one-cycle, weight decay
{c['weight_decay']}, {c['epochs']} epochs = {record['steps']} steps, one torch thread under `nice` on the
shared 2-core machine: {record['minutes']} min including reading the songs.

## Validation loss (validation songs, nats per note)

The marginal is the training notes' own counts per role, for velocity and offset at the bar's level
(8 levels), for length at the number of steps to the next onset: what a table of the data would
predict without the rest of the note's context.

| role | velocity | velocity, marginal | offset | offset, marginal | length | length, marginal |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
{rows}

## Limits

One genre of one kind of player (pianists arranging Chinese pop). The timing it learned is mostly
the grid: pitched parts sound nearly quantised even when they are not. Lengths are played only in
the bars the part model wrote freely (a style idiom's bars keep the idiom's lengths, a pad holds its
notes). The corpus model's voices (classical, folk, children's songs, ragtime's right hand) are played
by this model too, velocity and timing only, as melody, bass or comping by their role; a part written
by rules (ragtime's stride left hand) keeps its rule velocities and sits on the grid.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(pop909.DEFAULT_DIR), help="a local POP909 copy")
    parser.add_argument("--card", metavar="NPZ", help="print the model card of a checkpoint and stop")
    parser.add_argument("--out", help="the .npz to write")
    parser.add_argument("--epochs", type=int, default=PerformTrainConfig.epochs)
    parser.add_argument("--limit", type=int, default=None, help="read only the first N songs of each split")
    args = parser.parse_args(argv)
    if args.card:
        print(card(perform.read(Path(args.card)).record), end="")
        return 0
    if not args.out:
        parser.error("--out is needed to train")
    record = train(Path(args.data), Path(args.out), PerformTrainConfig(epochs=args.epochs), limit=args.limit)
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
