"""A soak run: mixed requests from several clients against one engine process, with the
engine's memory, file descriptors and threads sampled as it goes. Shared by the CI test and
the full-size benchmark."""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bridge.client import EngineClient, EngineProcess
from protos.cadenza.v1 import engine_pb2 as pb

PROMPTS = ["disco with slap bass and drums", "slow piano ballad in D minor", "techno, acid bassline",
           "jazz trio with walking bass", "ambient pad, no drums", "irish jig on fiddle in 6/8"]


@dataclass
class ProcessSample:
    at: float
    rss_kib: int
    fds: int
    threads: int


@dataclass
class SoakResult:
    latencies: list[tuple[float, str, float]] = field(default_factory=list)  # (start, rpc, seconds)
    samples: list[ProcessSample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def rss_median(self, start: float, end: float) -> float:
        """Median RSS (KiB) of the samples taken between ``start`` and ``end`` seconds."""
        values = [s.rss_kib for s in self.samples if start <= s.at < end]
        return float(np.median(values)) if values else float("nan")

    def p99(self, start: float, end: float) -> float:
        values = [s for t, _, s in self.latencies if start <= t < end]
        return float(np.percentile(values, 99)) if values else float("nan")


def sample(pid: int, at: float) -> ProcessSample:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    return ProcessSample(at=at, rss_kib=int(status["VmRSS"].split()[0]), fds=fds, threads=int(status["Threads"]))


def soak(seconds: float, clients: int = 4, seed: int = 0) -> SoakResult:
    """Run ``clients`` threads of random Describe/Generate/Render requests for ``seconds``."""
    result = SoakResult()
    with EngineProcess() as process:
        pid = process.process.pid
        with EngineClient(process.target) as client:  # warm up: text model, generator, render worker
            client.describe(PROMPTS[0])
            client.render(client.generate(PROMPTS[0], pb.Overrides(seed=0, bars=1)).midi)
        stop_at = time.monotonic() + seconds
        started = time.monotonic()
        lock = threading.Lock()

        def client_loop(index: int) -> None:
            rng = random.Random(seed * 100 + index)
            with EngineClient(process.target) as client:
                while time.monotonic() < stop_at:
                    rpc = rng.choice(["describe", "generate", "render"])
                    prompt = rng.choice(PROMPTS)
                    overrides = pb.Overrides(seed=rng.randrange(1000), bars=rng.choice([1, 2, 4]))
                    begin = time.monotonic()
                    try:
                        if rpc == "describe":
                            client.describe(prompt, overrides)
                        else:
                            midi = client.generate(prompt, overrides).midi
                            if rpc == "render":
                                client.render(midi)
                    except Exception as error:  # every failure is a finding, counted below
                        with lock:
                            result.errors.append(f"{rpc}: {error}")
                    with lock:
                        result.latencies.append((begin - started, rpc, time.monotonic() - begin))

        threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            result.samples.append(sample(pid, time.monotonic() - started))
            time.sleep(min(1.0, seconds / 30))
        for thread in threads:
            thread.join()
        result.samples.append(sample(pid, time.monotonic() - started))
    return result
