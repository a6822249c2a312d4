"""Benchmark: an 8-bar, 4-part clip (piano, bass, drums, lead), every part from a learned model
(pitched parts: the part model; drums: the drum model): model time (both models' writing, the
issue's budget 0.5 s, stretch 0.3 s) and whole compose() time.

Run: `python tests/benchmarks/bench_parts.py [RUNS]` from the repository root. Prints the models'
load time, then per style the median and p90 of the part model's, the drum model's and both models'
time, of compose() (wall clock, and the process's CPU time), the notes written and the share a
learned model wrote, and the load average, so a busy machine shows in the figures.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.compose import learned as learned_parts  # noqa: E402
from engine.compose import pipeline  # noqa: E402
from engine.compose.pipeline import compose_with_provenance  # noqa: E402
from engine.model import parts as partmodel  # noqa: E402
from tests.benchmarks.timing import percentile, spec  # noqa: E402


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    from engine.model.drums import load_default

    started = time.perf_counter()
    model = partmodel.load()
    loaded = time.perf_counter() - started
    load_default()
    print(f"part model {model.path.name}: {model.model.num_parameters():,} parameters, loaded in {loaded:.2f} s; "
          f"drum model loaded in {time.perf_counter() - started - loaded:.2f} s")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    spent = {"parts": 0.0, "drums": 0.0}

    def timed(name, original):
        def call(*args, **kwargs):
            t0 = time.perf_counter()
            result = original(*args, **kwargs)
            spent[name] += time.perf_counter() - t0
            return result
        return call

    learned_parts.write_part = timed("parts", learned_parts.write_part)
    pipeline.write_drums = timed("drums", pipeline.write_drums)
    for style in ("pop", "funk"):
        compose_with_provenance(spec(0, style))  # warm-up
        parts_s, drums_s, model_s, compose_s, cpu_s, notes, shares = [], [], [], [], [], [], []
        for seed in range(runs):
            spent.update(parts=0.0, drums=0.0)
            t0, c0 = time.perf_counter(), time.process_time()
            score, provenance = compose_with_provenance(spec(seed, style))
            compose_s.append(time.perf_counter() - t0)
            cpu_s.append(time.process_time() - c0)
            parts_s.append(spent["parts"])
            drums_s.append(spent["drums"])
            model_s.append(spent["parts"] + spent["drums"])
            notes.append(sum(len(t.notes) for t in score.tracks))
            shares.append(provenance.share())

        def ms(values: list[float]) -> str:
            return f"median {statistics.median(values) * 1000:.0f} ms, p90 {percentile(values, 0.9) * 1000:.0f} ms"

        print(f"{style}: models (part + drum) {ms(model_s)} [part model {ms(parts_s)}; drum model {ms(drums_s)}]; "
              f"compose {ms(compose_s)} (CPU time of this process: median {statistics.median(cpu_s) * 1000:.0f} ms, "
              "the wall time less the waiting on a busy machine); notes per clip median "
              f"{statistics.median(notes):.0f}, "
              f"learned share min {min(shares):.3f} (runs {runs})")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
