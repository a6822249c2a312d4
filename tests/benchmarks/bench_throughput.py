"""Throughput of `cadenza batch` (clips per second) with 1, 2, 3 engine replicas and concurrency 1-8.

Every point makes the same clips (prompts and seeds) through one client whose target names all
replicas (round_robin), writing whole clip folders as `cadenza batch` does. Each replica is
warmed up first (its first request loads the text model). Prints one row per point.

    nice python -m tests.benchmarks.bench_throughput [--replicas 1,2,3] [--concurrency 1-8]
        [--clips 8] [--bars 2] [--sample-rate 22050]

On a machine with C cores the engines, their render workers and the client (which encodes the
WAVs and the picture) share those cores: throughput stops growing once they are busy.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from bridge.batch import BatchItem, run_batch
from bridge.client import EngineClient
from protos.cadenza.v1 import engine_pb2 as pb
from tests.bridge.replicas import ipv4_target, start_replicas

PROMPTS = ["funky disco groove with slap bass", "slow piano ballad in D minor", "bossa nova with nylon guitar",
           "driving techno at 128 BPM", "folk waltz on acoustic guitar", "big band swing",
           "lofi hip hop with rhodes", "celtic reel with fiddle"]


def _range(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(part) for part in text.split(",")]


def measure(client: EngineClient, clips: int, concurrency: int, bars: int, sample_rate: int) -> tuple[float, float]:
    """(clips per second, mean seconds per clip) for ``clips`` clips at ``concurrency``."""
    items = [BatchItem(line=i + 1, name=f"{i:04d}", prompt=PROMPTS[i % len(PROMPTS)],
                       overrides={"bars": bars, "seed": i}) for i in range(clips)]
    out = Path(tempfile.mkdtemp(prefix="cadenza-bench-"))
    try:
        summary = run_batch(client, items, out, concurrency, sample_rate)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    totals = summary.totals()
    if totals["done"] != clips:
        failed = [o.error for o in summary.outcomes if o.status != "done"]
        raise RuntimeError(f"{clips - totals['done']} clips failed: {failed[:3]}")
    return totals["clips_per_second"], totals["mean_seconds_per_clip"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", default="1,2,3", help="replica counts (default 1,2,3)")
    parser.add_argument("--concurrency", default="1-8", help="concurrency values (default 1-8)")
    parser.add_argument("--clips", type=int, default=8, help="clips per point (default 8)")
    parser.add_argument("--bars", type=int, default=2)
    parser.add_argument("--sample-rate", type=int, default=22050)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.1f}; "
          f"{args.clips} clips of {args.bars} bars at {args.sample_rate} Hz per point")
    print(f"{'replicas':>8} {'concurrency':>11} {'clips/s':>8} {'s/clip':>7}")
    for count in _range(args.replicas):
        replicas = start_replicas(count)
        try:
            with EngineClient(ipv4_target(replicas)) as client:
                client.check()
                for replica in replicas:  # warm each one up through its own address
                    with EngineClient(replica.target) as one:
                        one.render(one.generate("warm up", pb.Overrides(bars=1)).midi, args.sample_rate, bars=1)
                time.sleep(0.5)
                for concurrency in _range(args.concurrency):
                    rate, per_clip = measure(client, args.clips, concurrency, args.bars, args.sample_rate)
                    print(f"{count:>8} {concurrency:>11} {rate:>8.3f} {per_clip:>7.2f}", flush=True)
        finally:
            for replica in replicas:
                replica.close()
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
