"""Request ids through a real engine process on a shared PostgreSQL store: a repeated call makes one take."""
from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest

from bridge.client import EngineProcess
from engine.sessions.store import open_store
from protos.cadenza.v1 import engine_pb2 as pb
from protos.cadenza.v1 import engine_pb2_grpc as pb_grpc

PROMPT = "a calm piano tune"


@pytest.fixture()
def store_engine(postgres_url: str) -> Iterator[tuple[EngineProcess, pb_grpc.EngineStub, str]]:
    with EngineProcess("--store", postgres_url) as process, grpc.insecure_channel(process.target) as channel:
        yield process, pb_grpc.EngineStub(channel), postgres_url


def _generate(stub: pb_grpc.EngineStub, session: str, request_id: str | None, seed: int) -> pb.GenerateResult:
    metadata = [("cadenza-request-id", request_id)] if request_id else None
    request = pb.GenerateRequest(prompt=PROMPT, session=session, candidates=1,
                                 overrides=pb.Overrides(bars=2, seed=seed))
    events = list(stub.Generate(request, metadata=metadata, timeout=120))
    return next(e.result for e in events if e.HasField("result"))


def test_a_repeated_request_id_returns_the_first_take(store_engine) -> None:
    process, stub, url = store_engine
    session, rid = f"s-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    first = _generate(stub, session, rid, seed=1)
    again = _generate(stub, session, rid, seed=2)  # a retry; even asking otherwise, it gets the recorded take
    assert again.take == first.take and again.midi == first.midi and again.spec == first.spec
    assert again.spec.seed == 1
    other = _generate(stub, session, uuid.uuid4().hex, seed=1)
    plain = [_generate(stub, session, None, seed=1) for _ in range(2)]  # no id: no dedup
    assert len({first.take, other.take, *(p.take for p in plain)}) == 4

    vary = pb.VaryRequest(session=session, take=first.take, parts=[], amount=0.5, seed=3, candidates=1)
    rid_vary = [("cadenza-request-id", uuid.uuid4().hex)]
    one = stub.Vary(vary, metadata=rid_vary, timeout=60)
    two = stub.Vary(vary, metadata=rid_vary, timeout=60)
    assert one.take == two.take and one.midi == two.midi and one.parent == first.take
    verdict = pb.VerdictRequest(session=session, take=one.take, verdict="reject", reason="too busy")
    rid_verdict = [("cadenza-request-id", uuid.uuid4().hex)]
    for _ in range(2):
        stub.Verdict(verdict, metadata=rid_verdict, timeout=30)
    taste = stub.Taste(pb.TasteRequest(session=session), timeout=30)
    assert taste.examples == 1

    history = stub.History(pb.HistoryRequest(session=session), timeout=30).takes
    assert [t.take for t in history] == [first.take, other.take, *(p.take for p in plain), one.take]
    store = open_store(url)  # what the database itself holds, read by a second connection
    try:
        recorded = {t.id: t.request_id for t in store.history(session)}
        assert [v["verdict"] for v in store.verdicts(session)] == ["reject"]  # the retried verdict logged once
    finally:
        store.close()
    assert recorded[first.take] == rid and recorded[one.take] == rid_vary[0][1]
    assert recorded[plain[0].take] is None and recorded[plain[1].take] is None


def test_a_bad_request_id_is_refused_by_name(store_engine) -> None:
    _, stub, _ = store_engine
    with pytest.raises(grpc.RpcError) as caught:
        _generate(stub, "bad-id", "x" * 500, seed=1)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cadenza-request-id" in caught.value.details() and "1-128" in caught.value.details()


@pytest.mark.parametrize("value, words", [("mysql://db/x", "--store"), ("postgresql://nobody@127.0.0.1:1/x",
                                                                          "cannot reach the PostgreSQL store")])
def test_a_bad_store_is_named_at_start(value: str, words: str) -> None:
    from tests.conftest import run_cli

    done = run_cli("serve", "--port", "0", "--store", value, timeout=60)
    assert done.returncode != 0 and words in done.stderr, done.stderr
