"""Benchmark: model time for an 8-bar, 4-part clip (piano, bass, drums, lead) on this machine.

Run: `python tests/benchmarks/bench_generate.py [RUNS]` from the repository root. Prints the
model's decoding time (the constrained token-by-token generation, the part that scales with
the model) and the whole compose() time (model + chord detection + arranger), per seed, with
the load average so a busy machine shows in the figures.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.catalog import styles  # noqa: E402
from engine.compose.pipeline import compose, harmonic_plan, model_request, plan_voices  # noqa: E402
from engine.model.generator import load  # noqa: E402
from tests.benchmarks.timing import percentile, spec  # noqa: E402


def request_for(seed: int, style: str, plan):
    """The model request compose makes: with the style's harmonic plan."""
    return model_request(spec(seed, style), plan, harmonic_plan(spec(seed, style), styles.get(style)))


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    started = time.perf_counter()
    generator = load()
    print(f"checkpoint {generator.path.name}: {generator.model.num_parameters():,} parameters, "
          f"loaded in {time.perf_counter() - started:.2f} s")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for style in ("pop", "classical"):
        plan = plan_voices(spec(0, style).parts)
        generator.generate(request_for(0, style, plan))  # warm-up
        model_s, compose_s, tokens, notes = [], [], [], []
        for seed in range(runs):
            request = request_for(seed, style, plan)
            t0 = time.perf_counter()
            decoded = generator.generate(request)
            model_s.append(time.perf_counter() - t0)
            tokens.append(generator.last_tokens)
            notes.append(len(decoded))
            t0 = time.perf_counter()
            compose(spec(seed, style))
            compose_s.append(time.perf_counter() - t0)
        per_token = [s / t * 1000 for s, t in zip(model_s, tokens, strict=True)]
        print(f"\n{style}: 8 bars, 4 parts ({len(plan.ranges)} model voices), {runs} seeds")
        print(f"  model time   median {statistics.median(model_s):.3f} s  p90 {percentile(model_s, 0.9):.3f} s  "
              f"min {min(model_s):.3f} s  max {max(model_s):.3f} s")
        print(f"  compose()    median {statistics.median(compose_s):.3f} s  p90 {percentile(compose_s, 0.9):.3f} s")
        print(f"  tokens       median {statistics.median(tokens):.0f}  ({statistics.median(per_token):.3f} ms/token)"
              f"  model notes median {statistics.median(notes):.0f}")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
