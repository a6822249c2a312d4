"""Benchmark: the drum model's time for an 8-bar clip, and compose() of an 8-bar 4-part clip with drums.

Run: `python tests/benchmarks/bench_drums.py [RUNS]` from the repository root. Prints the drum
model's sampling time (8 bars of 16th steps, GRU stepped in numpy) for 4/4 and 7/4, unguided
and at compose()'s genre guidance, its load
time, and the whole compose() time of an 8-bar clip of piano, bass, drums and lead (the pitched
model's decoding, the arranger, and the drum model), with the load average, since the machine
is shared; the process's CPU time beside each wall-clock figure shows what waiting for a core added.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.compose.drums import phrase_flags  # noqa: E402
from engine.compose.pipeline import compose  # noqa: E402
from engine.config import DRUM_GENRE_GUIDANCE  # noqa: E402
from engine.model.drums import DrumGenerator, default_checkpoint  # noqa: E402
from tests.benchmarks.timing import percentile, spec  # noqa: E402


def line(name: str, values: list[float]) -> str:
    return (f"  {name:<28} median {statistics.median(values) * 1000:7.1f} ms  "
            f"p90 {percentile(values, 0.9) * 1000:7.1f} ms  min {min(values) * 1000:7.1f} ms")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    t0 = time.perf_counter()
    drums = DrumGenerator.load(default_checkpoint())
    print(f"drum checkpoint {default_checkpoint().name}: {sum(p.numel() for p in drums.model.parameters()):,} "
          f"parameters, loaded in {(time.perf_counter() - t0) * 1000:.0f} ms")
    fill, start = phrase_flags(8)
    drums.generate([16] * 8, "rock", 120.0, fill, start, seed=0)  # warm-up
    g = DRUM_GENRE_GUIDANCE
    for meter, steps, guidance in (("4/4", 16, 1.0), ("4/4", 16, g), ("7/4", 28, g)):
        times, cpu, hits = [], [], []
        for seed in range(runs):
            t0, c0 = time.perf_counter(), time.process_time()
            hits.append(len(drums.generate([steps] * 8, "rock", 120.0, fill, start, seed=seed, guidance=guidance)))
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        # guidance other than 1 steps a second GRU state (the 'no genre' prediction), as compose() does
        print(line(f"drum model, 8 bars {meter} g{guidance:g}", times)
              + f"  CPU median {statistics.median(cpu) * 1000:.1f} ms  ({statistics.median(hits):.0f} hits)")
    compose(spec(0, "pop"))  # warm-up: loads the pitched model
    for style in ("pop", "funk", "jazz"):
        times, cpu = [], []
        for seed in range(runs):
            t0, c0 = time.perf_counter(), time.process_time()
            compose(spec(seed, style))
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        print(line(f"compose() 8 bars 4 parts {style}", times) + f"  CPU median {statistics.median(cpu) * 1000:.1f} ms")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
