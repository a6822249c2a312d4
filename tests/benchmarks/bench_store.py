"""The take store's cost per operation, SQLite vs PostgreSQL, and the taste refitted from stored verdicts.

Both back ends durable as shipped: SQLite WAL with synchronous=FULL in a temp folder; a throwaway
PostgreSQL cluster with fsync on (tests/postgres_cluster.py), reached over TCP on 127.0.0.1.
Takes carry a 4 kB MIDI payload, about what an 8-bar clip weighs. Prints median and p90 in ms.

    nice python -m tests.benchmarks.bench_store [--runs 200] [--verdicts 50 500]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from engine.serving.cocreation import CoCreation
from engine.sessions.store import Take, TakeStore, new_take_id, open_store
from tests.benchmarks.timing import timed
from tests.postgres_cluster import create_database, running_postgres


def _take(session: str, request_id: str | None = None) -> Take:
    return Take(id=new_take_id(), session=session, parent=None, operation="generate", params={"prompt": "x"},
                spec=os.urandom(300), seed=1, model_version="bench", midi=b"MThd" + os.urandom(4000),
                created=time.time(), features={"density": float(np.random.rand()), "register": 60.0},
                request_id=request_id)


def show(backend: str, what: str, seconds: list[float]) -> None:
    ms = np.array(seconds) * 1000
    print(f"{backend:<10} {what:<38} median {np.median(ms):7.2f} ms   p90 {np.percentile(ms, 90):7.2f} ms")


def bench(backend: str, store: TakeStore, runs: int, verdict_counts: list[int]) -> None:
    session = f"bench-{uuid.uuid4().hex[:6]}"
    added: list[Take] = []
    show(backend, "add take (4 kB MIDI, one transaction)", timed(lambda: added.append(store.add(_take(session))), runs))
    show(backend, "add take with a request id", timed(lambda: store.add(_take(session, uuid.uuid4().hex)), runs))
    replay = store.add(_take(session, "same"))
    show(backend, "add again with a seen request id", timed(lambda: store.add(_take(session, "same")), runs))
    assert store.by_request(session, "same") == replay
    show(backend, "by_request (the replay lookup)", timed(lambda: store.by_request(session, "same"), runs))
    show(backend, "get take", timed(lambda: store.get(session, added[-1].id), runs))
    show(backend, "verdict", timed(lambda: store.set_verdict(session, added[-1].id, "keep"), runs))
    co = CoCreation(store)
    for count in verdict_counts:
        taste_session = f"taste-{count}-{uuid.uuid4().hex[:6]}"
        for n in range(count):
            take = store.add(_take(taste_session))
            store.set_verdict(taste_session, take.id, "keep" if n % 2 else "reject", "" if n % 2 else "too busy")
        show(backend, f"taste refit from {count} stored verdicts", timed(lambda s=taste_session: co.taste(s),
                                                                         max(5, runs // 10)))
    show(backend, f"history of {len(store.history(session))} takes", timed(lambda: store.history(session),
                                                                           max(5, runs // 10)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--verdicts", type=int, nargs="+", default=[50, 500])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder))
        bench("sqlite", store, args.runs, args.verdicts)
        store.close()
    with running_postgres(durable=True) as server:
        store = open_store(create_database(server))
        bench("postgresql", store, args.runs, args.verdicts)
        store.close()


if __name__ == "__main__":
    main()
