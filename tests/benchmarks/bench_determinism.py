"""What same-seed determinism costs: clips composed at once vs alone, and a taste fitted before the
likelihoods are stored (taste() then computes them) vs after.

    PYTHONPATH=$PWD nice python -m tests.benchmarks.bench_determinism [--clips 8] [--verdicts 20]

Prints how many clips composed on threads at once differ from the same requests composed alone
(0 is the promise), the wall-clock time of each way, and the milliseconds of the first taste()
of a session whose verdicts have no likelihood yet, against one where they are all stored.
"""
from __future__ import annotations

import argparse
import hashlib
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from engine.compose.pipeline import compose
from engine.music.midi import score_to_smf
from engine.serving.cocreation import CoCreation
from engine.serving.convert import overrides_from_pb
from engine.sessions.store import open_store
from engine.understand.prompt import understand
from protos.cadenza.v1 import engine_pb2 as pb

PROMPT = "a calm piano tune with bass"


def _spec(seed: int, bars: int):
    return understand(PROMPT, overrides_from_pb(pb.Overrides(bars=bars, seed=seed)))


def _digest(seed: int, bars: int) -> str:
    return hashlib.sha1(score_to_smf(compose(_spec(seed, bars)))).hexdigest()


def concurrency(clips: int, bars: int) -> None:
    _digest(0, bars)  # models loaded before timing
    start = time.perf_counter()
    alone = {seed: _digest(seed, bars) for seed in range(clips)}
    sequential = time.perf_counter() - start
    together: dict[int, str] = {}
    threads = [threading.Thread(target=lambda s=seed: together.__setitem__(s, _digest(s, bars))) for seed in alone]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    parallel = time.perf_counter() - start
    differ = sum(together[s] != alone[s] for s in alone)
    print(f"{clips} clips of {bars} bars: alone {sequential:.1f} s, all at once {parallel:.1f} s; "
          f"{differ} of {clips} differ (0 is the promise)")


def taste_cost(verdicts: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        made = CoCreation(open_store(Path(folder) / "a"))
        bare = CoCreation(open_store(Path(folder) / "b"))
        take, _ = made.generate("s", _spec(1, 4), compose, candidates=1)
        for k in range(verdicts):
            varied = made.vary("s", take.id, [], 0.5, 10 + k, candidates=1)
            made.verdict("s", varied.id, "keep" if k % 2 else "reject", "", 0)
        made.settle()
        for t in made.store.history("s"):
            bare.store.add(replace(t, features={k: v for k, v in t.features.items() if k != "likelihood"},
                                   verdict="", reason="", rating=0))
        for v in made.store.verdicts("s"):
            bare.store.set_verdict("s", v["take"], v["verdict"], v["reason"], v["rating"])
        timings = {}
        for name, co in (("all stored", made), ("none stored, first call", bare), ("none stored, second call", bare)):
            start = time.perf_counter()
            co.taste("s")
            timings[name] = 1000 * (time.perf_counter() - start)
        same = (made.taste("s").weights == bare.taste("s").weights).all()
        print(f"taste() of {verdicts} verdicts: " + ", ".join(f"{k} {v:.0f} ms" for k, v in timings.items())
              + f"; same weights: {same}")
        for co in (made, bare):
            co.settle()
            co.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--bars", type=int, default=4)
    parser.add_argument("--verdicts", type=int, default=20)
    args = parser.parse_args()
    concurrency(args.clips, args.bars)
    taste_cost(args.verdicts)


if __name__ == "__main__":
    main()
