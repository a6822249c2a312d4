"""Benchmark: render 4 stems of 8 bars with effects; prints the real-time factor and peak memory.

Run from the repository root: `nice python tests/benchmarks/bench_render.py` (on an idle machine
for figures worth quoting). The goal is >= 20x real time on the 2-core machine.

Figures:
- in-process: ``render_in_process`` (instruments + effect chains + tails + mix + mastering);
- worker: ``render()`` as the engine calls it, in the persistent worker process: cold (the first render
  starts the worker: interpreter, imports, warm-up) and warm (the same worker, back to back, each render
  a clip of another seed, so no part is in the worker's cache), with the worker's own CPU time per render;
  and a re-render of notes the worker rendered before (every part from its cache: what a vary's
  unchanged parts cost);
- CPU time of the in-process render, the figure that does not depend on what else the machine runs;
- peak memory: the worker's peak resident set (VmHWM from /proc: it holds only the render).
"""
from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.compose.pipeline import compose  # noqa: E402
from engine.understand.prompt import Overrides, understand  # noqa: E402
from plugin_host import worker  # noqa: E402
from plugin_host.render import RenderOptions, render, render_in_process  # noqa: E402

PROMPT = "pop with piano, bass, drums and synth lead"
RUNS = 3
RATE = 48000


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far, from /proc (0 when unknown)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_mb(pid: int | None) -> float:
    """A process's peak resident set (VmHWM), in MB (0 when unknown)."""
    if pid is None:
        return 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    spec = understand(PROMPT, Overrides(bars=8, tempo_bpm=120.0))
    score = compose(spec)
    roles = {p.name: p.role for p in spec.parts}
    options = RenderOptions(style=spec.style, roles=roles, bars=spec.bars, prompt=PROMPT)
    seconds = spec.bars * spec.meter.numerator * (4 / spec.meter.denominator) * 60 / spec.tempo_bpm
    print(f"clip: {len(spec.parts)} stems ({', '.join(f'{p.name}/{p.role}' for p in spec.parts)}), "
          f"{spec.bars} bars of {spec.style} at {spec.tempo_bpm:g} BPM = {seconds:.1f} s of audio at {RATE} Hz")
    stages = {}

    def status(fraction: float, doing: str) -> None:
        stages[doing.split(" ")[0]] = time.perf_counter()

    render_in_process(score, RATE, options)  # warm caches (SoundFont file, numpy, pedalboard)
    local, local_cpu = [], []
    for _ in range(RUNS):
        start, cpu = time.perf_counter(), time.process_time()
        stems = render_in_process(score, RATE, options, status)
        local.append(time.perf_counter() - start)
        local_cpu.append(time.process_time() - cpu)
    # Clips of other seeds (the same prompt, parts and length): the worker keeps the parts it rendered,
    # so the warm renders each take notes it has not seen.
    others = [compose(understand(PROMPT, Overrides(bars=8, tempo_bpm=120.0, seed=seed))) for seed in range(1, RUNS + 1)]

    def isolated_render(clip) -> float:
        start = time.perf_counter()
        stems = render(clip, RATE, style=spec.style, roles=roles, bars=spec.bars, prompt=PROMPT)
        took = time.perf_counter() - start
        reused.append(len(stems.reused))
        return took

    reused: list[int] = []
    cold = isolated_render(score)  # no worker yet: interpreter start + imports + warm-up, then the render
    worker_pid = worker._idle[0].process.pid if worker._idle else None
    cpu_before = _cpu_seconds(worker_pid)
    isolated = [isolated_render(clip) for clip in others]  # the same persistent worker, back to back
    worker_cpu = (_cpu_seconds(worker_pid) - cpu_before) / RUNS
    again = isolated_render(score)  # notes the worker rendered before: every part from its cache
    worker_peak_mb = _peak_mb(worker_pid)  # after the cold and warm renders (the cache holds their parts)
    self_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best_local, best_isolated = min(local), min(isolated)
    print(f"in-process render: best {best_local:.3f} s, median {statistics.median(local):.3f} s "
          f"-> {seconds / best_local:.1f}x real time (median {seconds / statistics.median(local):.1f}x)")
    print(f"in-process CPU time: best {min(local_cpu):.3f} s -> {seconds / min(local_cpu):.1f}x real time "
          f"(what one idle core would do; wall time suffers when other jobs share the 2 cores)")
    print(f"worker render, cold (first render: worker start + imports + warm-up): {cold:.3f} s "
          f"-> {seconds / cold:.1f}x")
    print(f"worker render, warm (persistent worker): best {best_isolated:.3f} s, median "
          f"{statistics.median(isolated):.3f} s -> {seconds / best_isolated:.1f}x real time "
          f"(median {seconds / statistics.median(isolated):.1f}x); worker CPU per render {worker_cpu:.3f} s "
          f"(2 threads: CPU can exceed wall)")
    print(f"worker render of notes it rendered before (a vary's unchanged parts): {again:.3f} s -> "
          f"{seconds / again:.1f}x ({reused[-1]} of {len(spec.parts)} parts from its cache; the warm renders "
          f"above took {max(reused[1:-1])} from it)")
    print(f"peak memory: render worker {worker_peak_mb:.0f} MB (VmHWM); this process (text model + "
          f"in-process renders) {self_peak_mb:.0f} MB")
    print("sources: " + ", ".join(f"{name}={source.rsplit('/', 1)[-1]}" for name, source in stems.sources.items()))
    print(f"mix: {stems.loudness_lufs:.2f} LUFS, {stems.true_peak_dbtp:.2f} dBTP, {stems.frames} frames")
    print(f"load average while measuring: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 cores, shared)")
    print("goal: >= 20x real time through the worker:", "met" if seconds / best_isolated >= 20 else "NOT met")

if __name__ == "__main__":
    main()
