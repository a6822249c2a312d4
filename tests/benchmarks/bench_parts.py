"""Benchmark: an 8-bar, 4-part clip (piano, bass, drums, lead) with every pitched part from the
part model: model time (the part model's constrained bar-by-bar writing) and whole compose() time.

Run: `python tests/benchmarks/bench_parts.py [RUNS]` from the repository root. Prints per style
the median and p90 of the part model's time and of compose() (wall clock, and the process's CPU
time), the pitched notes written, and the load average, so a busy machine shows in the figures.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.compose import learned as learned_parts  # noqa: E402
from engine.compose.pipeline import compose_with_provenance  # noqa: E402
from engine.model import parts as partmodel  # noqa: E402
from tests.benchmarks.timing import percentile, spec  # noqa: E402


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    started = time.perf_counter()
    model = partmodel.load()
    print(f"part model {model.path.name}: {model.model.num_parameters():,} parameters, "
          f"loaded in {time.perf_counter() - started:.2f} s")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    spent = {"model": 0.0, "tokens": 0}
    original = learned_parts.write_part

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        before = model.decoder.length
        result = original(*args, **kwargs)
        spent["model"] += time.perf_counter() - t0
        spent["tokens"] += max(0, model.decoder.length - before)
        return result

    learned_parts.write_part = timed
    for style in ("pop", "funk"):
        compose_with_provenance(spec(0, style))  # warm-up
        model_s, compose_s, cpu_s, drafts = [], [], [], []
        for seed in range(runs):
            spent["model"] = 0.0
            t0, c0 = time.perf_counter(), time.process_time()
            score, provenance = compose_with_provenance(spec(seed, style))
            compose_s.append(time.perf_counter() - t0)
            cpu_s.append(time.process_time() - c0)
            model_s.append(spent["model"])
            drafts.append(provenance.learned + provenance.style_rhythm)
        print(f"{style}: part model median {statistics.median(model_s) * 1000:.0f} ms, p90 "
              f"{percentile(model_s, 0.9) * 1000:.0f} ms; compose median {statistics.median(compose_s) * 1000:.0f} ms, "
              f"p90 {percentile(compose_s, 0.9) * 1000:.0f} ms (CPU time of this process: median "
              f"{statistics.median(cpu_s) * 1000:.0f} ms, the wall time less the waiting on a busy machine); "
              "pitched notes per clip median "
              f"{statistics.median(drafts):.0f} (runs {runs})")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
