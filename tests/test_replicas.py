"""Three engine replicas sharing one PostgreSQL, reached through one gRPC channel; one is killed -9 half way.

The same script of 200 requests (4 sessions at once, each: generate, then varies, verdicts and
more generates, every call with its own request id) runs twice: through one replica, then
through a channel spreading calls over three with round_robin and a retry policy for
UNAVAILABLE, SIGKILLing one replica after half the calls. Every call must complete, no take may
be stored twice, and each session's history (operations, parents, seeds, MIDI, verdicts) must be
the same as in the one-replica run.

The channel is a raw grpc channel with its own service config, independent of bridge.client.
"""
from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator

import grpc
import pytest

from bridge.client import EngineProcess
from engine.sessions.store import open_store
from protos.cadenza.v1 import engine_pb2 as pb
from protos.cadenza.v1 import engine_pb2_grpc as pb_grpc

SESSIONS = 4
CALLS_PER_SESSION = 50  # 4 x 50 = 200 requests per run
PROMPT = "a calm piano tune with bass"
SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "healthCheckConfig": {"serviceName": "cadenza.v1.Engine"},
    "methodConfig": [{
        "name": [{"service": "cadenza.v1.Engine"}],
        "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"]},
    }],
}
STREAM_ATTEMPTS = 5  # gRPC does not retry a stream once its first message arrived: the caller does, same id


def _channel(addresses: list[str]) -> grpc.Channel:
    target = "ipv4:" + ",".join(addresses)
    return grpc.insecure_channel(target, options=[("grpc.service_config", json.dumps(SERVICE_CONFIG)),
                                                  ("grpc.enable_retries", 1)])


def _rid() -> list[tuple[str, str]]:
    return [("cadenza-request-id", uuid.uuid4().hex)]


def _generate(stub: pb_grpc.EngineStub, session: str, seed: int) -> pb.GenerateResult:
    metadata = _rid()  # one id for every attempt of this call
    request = pb.GenerateRequest(prompt=PROMPT, session=session, candidates=1,
                                 overrides=pb.Overrides(bars=2, seed=seed))
    for attempt in range(STREAM_ATTEMPTS):
        try:
            for event in stub.Generate(request, metadata=metadata, timeout=120):
                if event.HasField("result"):
                    return event.result
            raise AssertionError("Generate ended without a result")
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == STREAM_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _session_script(stub: pb_grpc.EngineStub, session: str, number: int, done: Callable[[], None]) -> None:
    """50 calls on one session, each depending on the last: what a composer at the keyboard would do."""
    current = _generate(stub, session, seed=number).take
    done()
    for i in range(1, CALLS_PER_SESSION):
        if i % 10 == 0:
            current = _generate(stub, session, seed=100 * number + i).take
        elif i % 2 == 1:
            varied = stub.Vary(pb.VaryRequest(session=session, take=current, amount=0.5, seed=1000 * number + i,
                                              candidates=1), metadata=_rid(), timeout=60)
            if i % 4 == 1:
                current = varied.take
        else:
            keep = i % 4 == 0
            stub.Verdict(pb.VerdictRequest(session=session, take=current, verdict="keep" if keep else "reject",
                                           reason="" if keep else "too busy"), metadata=_rid(), timeout=60)
        done()


def _run(stub: pb_grpc.EngineStub, prefix: str, on_call: Callable[[int], None] = lambda n: None) -> list[str]:
    """The whole script, sessions at once; returns the session names. Any failed call fails the run."""
    count = [0]
    lock = threading.Lock()
    errors: list[BaseException] = []

    def done() -> None:
        with lock:
            count[0] += 1
            n = count[0]
        on_call(n)

    def run_one(k: int) -> None:
        try:
            _session_script(stub, f"{prefix}-{k}", k, done)
        except BaseException as error:  # reported with the others below
            errors.append(error)

    threads = [threading.Thread(target=run_one, args=(k,)) for k in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [], f"calls failed: {errors}"
    assert count[0] == SESSIONS * CALLS_PER_SESSION
    return [f"{prefix}-{k}" for k in range(SESSIONS)]


def _shape(store, session: str) -> tuple[list, list]:
    """A session's history with take ids replaced by their position: comparable across runs."""
    takes = store.history(session)
    position = {t.id: n for n, t in enumerate(takes)}
    history = [(t.operation, position.get(t.parent), t.seed, hashlib.sha1(t.midi).hexdigest(), t.verdict, t.reason,
                t.rating) for t in takes]
    verdicts = [(position[v["take"]], v["verdict"], v["reason"], v["rating"]) for v in store.verdicts(session)]
    return history, verdicts


@pytest.fixture()
def replicas(postgres_url: str) -> Iterator[tuple[list[EngineProcess], str]]:
    processes: list[EngineProcess] = []
    try:
        for _ in range(3):
            processes.append(EngineProcess("--store", postgres_url, "--workers", "2"))
        yield processes, postgres_url
    finally:
        for process in processes:
            process.close()


def test_three_replicas_one_killed_make_the_one_replica_history(replicas) -> None:
    processes, url = replicas
    for process in processes:  # each replica loads its text model before the runs (not one of the 200 calls)
        with grpc.insecure_channel(process.target) as channel:
            pb_grpc.EngineStub(channel).Describe(pb.DescribeRequest(prompt=PROMPT), timeout=120)

    with _channel([processes[0].target]) as one:
        alone = _run(pb_grpc.EngineStub(one), "one")

    killed = threading.Event()

    def kill_half_way(n: int) -> None:
        if n == SESSIONS * CALLS_PER_SESSION // 2 and not killed.is_set():
            processes[1].process.kill()  # SIGKILL, with the other sessions' calls in flight
            killed.set()

    with _channel([p.target for p in processes]) as three:
        shared = _run(pb_grpc.EngineStub(three), "three", kill_half_way)
    assert killed.is_set() and processes[1].process.wait(timeout=10) == -9

    store = open_store(url)
    try:
        duplicated = store._transaction(lambda db: db.execute(
            "SELECT session, request_id, COUNT(*) AS n FROM takes GROUP BY session, request_id "
            "HAVING COUNT(*) > 1 OR request_id IS NULL").fetchall())
        assert duplicated == [], "a request made more than one take (or a take has no request id)"
        for a, b in zip(alone, shared, strict=True):
            history_alone, verdicts_alone = _shape(store, a)
            history_shared, verdicts_shared = _shape(store, b)
            assert len(history_shared) == len(history_alone) == 1 + 4 + 25  # generates, more generates, varies
            assert history_shared == history_alone
            assert verdicts_shared == verdicts_alone and len(verdicts_shared) == 20
    finally:
        store.close()
