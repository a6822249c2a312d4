"""Latency of co-creation RPCs through a real engine process (issue 8 goal: <= 0.2 s).

Vary of one part, infill of 2 bars of one part, continue by 8 bars, a verdict, history: each
timed end to end from the client (gRPC round trip, the operation, the SQLite transaction).

    nice python -m tests.benchmarks.bench_cocreation [--runs 20]
"""
from __future__ import annotations

import argparse
import tempfile

import numpy as np

from bridge.client import EngineClient, EngineProcess
from protos.cadenza.v1 import engine_pb2 as pb
from tests.benchmarks.timing import timed

PROMPT = "a pop tune with flute melody, bass and drums"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state, EngineProcess("--state", state) as engine, \
            EngineClient(engine.target) as client:
        client.check(timeout=60)
        take = client.generate(PROMPT, pb.Overrides(bars=8, seed=1), session="bench").take
        # warm: the first infill loads the generator in the engine
        client.call("Infill", pb.InfillRequest(session="bench", take=take, part="flute", first_bar=5, last_bar=6))
        cases = {
            "vary bass (1 candidate)": lambda: client.call("Vary", pb.VaryRequest(
                session="bench", take=take, parts=["bass"], candidates=1)),
            "vary bass (4 candidates)": lambda: client.call("Vary", pb.VaryRequest(
                session="bench", take=take, parts=["bass"], candidates=4)),
            "infill flute bars 5-6": lambda: client.call("Infill", pb.InfillRequest(
                session="bench", take=take, part="flute", first_bar=5, last_bar=6)),
            "continue 8 bars": lambda: client.call("Continue", pb.ContinueRequest(session="bench", take=take, bars=8)),
            "verdict (keep)": lambda: client.call("Verdict", pb.VerdictRequest(session="bench", take=take,
                                                                               verdict="keep")),
            "history": lambda: client.call("History", pb.HistoryRequest(session="bench")),
        }
        print(f"{args.runs} runs each, engine on loopback, 8-bar take (flute, bass, drums); seconds")
        print(f"{'operation':<26} {'median':>7} {'p90':>7} {'max':>7}")
        for name, call in cases.items():
            s = np.array(timed(call, args.runs))
            print(f"{name:<26} {np.median(s):7.3f} {np.percentile(s, 90):7.3f} {s.max():7.3f}")
        history = client.call("History", pb.HistoryRequest(session="bench")).takes
        print(f"takes recorded in the session: {len(history)}")


if __name__ == "__main__":
    main()
