"""Distributed training against one process: do `torchrun --nproc_per_node=2` loss curves match?

Run: nice python tests/benchmarks/bench_ddp.py [STEPS] [WORKS]

Trains a small model three times on the same subset of the cached music21 corpus, at the same
global batch: (A) one process, seed 1; (B) `torchrun --nproc_per_node=2`, seed 1 (each rank half
of each batch, gloo on CPU); (C) one process, seed 2 — the noise a different seed (initial
weights, data order, dropout) makes. Prints the three loss curves every N steps (each point the
mean over the last N steps) and the max/mean |A-B| and |A-C|; B is "within noise" when its
distance from A is no larger than C's.
"""
from __future__ import annotations

import argparse
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CONFIG_FIELDS = {"batch_size": 16, "block_size": 128, "n_layer": 2, "n_head": 2, "n_embd": 64, "bucket": 4,
                 "warmup_steps": 20, "learning_rate": 3e-3, "min_learning_rate": 3e-4,
                 "threads": 1}  # one thread a process: on a busy 2-core machine two threads in one process thrash


def _encode_subset(works_wanted: int, path: Path) -> int:
    """Every k-th work of the cached corpus (all collections represented), tokenized, pickled to ``path``."""
    from engine.model.tokens import Vocab, build_tokenizer
    from engine.training.corpus import default_cache_dir, iter_scores, prepare, read_index
    from engine.training.dataset import encode_score

    directory = prepare(default_cache_dir())
    every = max(1, len(read_index(directory)) // works_wanted)
    vocab = Vocab(build_tokenizer())
    works = []
    for i, (work, score) in enumerate(iter_scores(directory)):
        if i % every == 0 and (encoded := encode_score(score, vocab, work.work, work.style, work.key,
                                                        work.tempo)) is not None:
            works.append(encoded)
    path.write_bytes(pickle.dumps(works))
    return len(works)


def worker(works_path: Path, steps: int, seed: int, out: Path) -> None:
    """One training run (a single process or one torchrun rank); rank 0 writes the checkpoint."""
    from engine.model.tokens import Vocab, build_tokenizer
    from engine.training.train import TrainConfig, distributed, train

    works = pickle.loads(works_path.read_bytes())
    config = replace(TrainConfig(**CONFIG_FIELDS), steps=steps, eval_every=steps, seed=seed)
    with distributed():
        train(works, Vocab(build_tokenizer()), config, out, f"bench subset of {len(works)} works", progress=False)


def _run(command: list[str], label: str) -> float:
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{label} failed:\n{result.stderr[-4000:]}")
    return time.monotonic() - started


def _curve(path: Path) -> np.ndarray:
    import torch

    return np.array(torch.load(path, weights_only=False)["record"]["train_loss_curve"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("steps", type=int, nargs="?", default=300)
    parser.add_argument("works", type=int, nargs="?", default=240)
    parser.add_argument("--every", type=int, default=25, help="print a point every N steps (mean of those N)")
    parser.add_argument("--worker", nargs=3, metavar=("WORKS", "SEED", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker[0]), args.steps, int(args.worker[1]), Path(args.worker[2]))
        return 0

    scratch = Path(tempfile.mkdtemp(prefix="cadenza-bench-ddp-"))
    works_path = scratch / "works.pkl"
    started = time.monotonic()
    count = _encode_subset(args.works, works_path)
    print(f"data: {count} works of the cached corpus, tokenized in {time.monotonic() - started:.0f} s; "
          f"model {CONFIG_FIELDS}, {args.steps} steps, global batch {CONFIG_FIELDS['batch_size']}")
    me = [sys.executable, str(Path(__file__).resolve()), str(args.steps), str(args.works)]
    runs = {
        "A 1 proc seed 1": (me + ["--worker", str(works_path), "1", str(scratch / "a.pt")], scratch / "a.pt"),
        "B torchrun x2 seed 1": ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                                  str(Path(__file__).resolve()), str(args.steps), str(args.works),
                                  "--worker", str(works_path), "1", str(scratch / "b.pt")], scratch / "b.pt"),
        "C 1 proc seed 2": (me + ["--worker", str(works_path), "2", str(scratch / "c.pt")], scratch / "c.pt"),
    }
    curves = {}
    try:
        for label, (command, out) in runs.items():
            seconds = _run(command, label)
            curves[label] = _curve(out)
            print(f"{label}: {seconds:.0f} s wall ({seconds / args.steps * 1000:.0f} ms/step including start-up)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    a, b, c = curves.values()
    n = args.every
    points = len(a) // n
    mean = {label: curve[:points * n].reshape(points, n).mean(axis=1) for label, curve in curves.items()}
    print(f"\n{'steps':>9}  " + "  ".join(f"{label:>20}" for label in curves) + f"  {'|A-B|':>7}  {'|A-C|':>7}")
    for i in range(points):
        ma, mb, mc = (mean[label][i] for label in curves)
        print(f"{i * n + 1:>4}-{(i + 1) * n:<4}  {ma:>20.4f}  {mb:>20.4f}  {mc:>20.4f}  {abs(ma - mb):>7.4f}  "
              f"{abs(ma - mc):>7.4f}")
    ab, ac = np.abs(a - b), np.abs(a - c)
    sab, sac = np.abs(mean["A 1 proc seed 1"] - mean["B torchrun x2 seed 1"]), np.abs(
        mean["A 1 proc seed 1"] - mean["C 1 proc seed 2"])
    print(f"\nper step:      |A-B| max {ab.max():.4f} mean {ab.mean():.4f};   |A-C| max {ac.max():.4f} "
          f"mean {ac.mean():.4f}")
    print(f"{n}-step means: |A-B| max {sab.max():.4f} mean {sab.mean():.4f};   |A-C| max {sac.max():.4f} "
          f"mean {sac.mean():.4f}")
    within = ab.mean() <= ac.mean() and sab.max() <= sac.max()
    print(f"torchrun x2 is {'within' if within else 'NOT within'} the noise of a different seed "
          f"(final {n}-step mean loss: A {mean['A 1 proc seed 1'][-1]:.4f}, B {mean['B torchrun x2 seed 1'][-1]:.4f}, "
          f"C {mean['C 1 proc seed 2'][-1]:.4f})")
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
