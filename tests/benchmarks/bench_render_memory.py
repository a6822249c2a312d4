"""Benchmark: a render's peak memory against the estimate the engine judges renders by.

Run from the repository root: `nice python tests/benchmarks/bench_render_memory.py`. Each case
renders in a fresh process (``render_in_process``, effects on, the default tail) and prints its
peak resident set (ru_maxrss) beside engine/serving/server.py's ``render_memory_bytes`` for the same
length, parts and rate. The estimate should sit above every measured peak; RENDER_MEMORY_MAX_BYTES
(engine/config.py) is then the largest render the engine starts.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CASES = [(30, 1, 48000), (120, 1, 48000), (120, 4, 48000), (60, 8, 48000), (60, 1, 96000)]

CHILD = r"""
import json, resource, sys
from symusic import Note, Score, Tempo, Track
from plugin_host.render import RenderOptions, render_in_process
seconds, parts, rate = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
score = Score(480)
score.tempos.append(Tempo(0, qpm=60.0))
for i in range(parts):
    track = Track(name=f"part{i}", program=[0, 33, 48, 80][i % 4])
    for beat in range(int(seconds)):
        track.notes.append(Note(beat * 480, 480, 48 + 5 * i, 90))
    score.tracks.append(track)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
render_in_process(score, rate, RenderOptions())
print(json.dumps({"before": before * 1024, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from engine.config import RENDER_MEMORY_MAX_BYTES
    from engine.serving.server import render_memory_bytes
    from plugin_host.config import TAIL_MAX_SECONDS

    print(f"budget: {RENDER_MEMORY_MAX_BYTES / 2**30:.1f} GiB")
    print(f"{'seconds':>7} {'parts':>5} {'rate':>6} {'peak MB':>8} {'estimate MB':>11} {'estimate/peak':>13}")
    for seconds, parts, rate in CASES:
        done = subprocess.run([sys.executable, "-c", CHILD, str(seconds), str(parts), str(rate)], cwd=ROOT,
                              capture_output=True, text=True, check=True)
        peak = json.loads(done.stdout.strip().splitlines()[-1])["peak"]
        estimate = render_memory_bytes(seconds + TAIL_MAX_SECONDS, parts, rate)
        print(f"{seconds:>7} {parts:>5} {rate:>6} {peak / 1e6:>8.0f} {estimate / 1e6:>11.0f} {estimate / peak:>13.2f}")


if __name__ == "__main__":
    main()
