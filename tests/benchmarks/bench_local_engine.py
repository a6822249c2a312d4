"""Wall time of `cadenza` commands as a user types them, without --engine: the first call starts the
user's engine in the background, the next ones find it (bridge/local_engine.py).

Each command is a fresh `python -m bridge.cli` process, in a runtime and state folder of the
benchmark's own; the engine it starts is stopped at the end. For comparison, the same commands
with an engine started for each call (`cadenza serve --no-announce`, what every call did before)
are timed with --private.

    nice python -m tests.benchmarks.bench_local_engine [--runs 3] [--private]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "pop with a flute melody, piano, bass and drums, 8 bars"


def cli(*args: str, cwd: Path) -> float:
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "bridge.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"cadenza {' '.join(args)} failed: {done.stderr}")
    return time.monotonic() - began


def private(*args: str, cwd: Path, state: str) -> float:
    """An engine started for this call and stopped after it, then the command against it."""
    from bridge.client import EngineClient, EngineProcess

    began = time.monotonic()
    with EngineProcess("--state", state) as engine, EngineClient(engine.target) as client:
        client.check(timeout=60)
        subprocess.run([sys.executable, "-m", "bridge.cli", *args, "--engine", engine.target], check=True,
                       capture_output=True, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--private", action="store_true", help="also time an engine started per call")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder) / "song"
        work.mkdir()
        os.environ["CADENZA_RUNTIME_DIR"] = str(Path(folder) / "runtime")
        os.environ["CADENZA_STATE"] = str(Path(folder) / "state")
        from engine.serving.local import stop_local_engine

        try:
            first = cli("generate", PROMPT, "--out", "first", "--seed", "1", "--quiet", cwd=work)
            print(f"generate, first call (starts the engine): {first:6.2f} s")
            cases = {
                "generate (8 bars, 4 parts, stems)": lambda n: ("generate", PROMPT, "--out", f"g{n}", "--seed",
                                                               str(n + 2), "--quiet"),
                "describe": lambda n: ("describe", PROMPT),
                "keep last": lambda n: ("keep", "last"),
                "vary last (stems, mix)": lambda n: ("vary", "last", "--parts", "bass"),
                "vary last --midi-only": lambda n: ("vary", "last", "--parts", "bass", "--midi-only"),
            }
            for name, command in cases.items():
                times = [cli(*command(n), cwd=work) for n in range(args.runs)]
                print(f"{name:<36} median {np.median(times):6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times)})")
                if command(0)[0] == "generate":  # the measure: a call that finds the engine, over the first
                    print(f"{'  second call / first call':<36} {times[0] / first:6.2f}  "
                          f"(median / first {np.median(times) / first:.2f})")
            if args.private:
                state = os.environ["CADENZA_STATE"]
                for name, command in (("generate", ("generate", PROMPT, "--out", "p", "--quiet")),
                                      ("describe", ("describe", PROMPT)), ("keep last", ("keep", "last"))):
                    seconds = private(*command, cwd=work, state=state)
                    print(f"{name + ', engine started per call':<36} {seconds:6.2f} s")
        finally:
            stop_local_engine()


if __name__ == "__main__":
    main()
