"""`cadenza serve --metrics-port 0`: the Prometheus endpoint scraped over HTTP while real requests are served,
and the JSON log lines carrying the request ids the client sent."""
from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.client import EngineProcess
from engine.serving.request_ids import REQUEST_ID_KEY
from protos.cadenza.v1 import engine_pb2 as pb
from protos.cadenza.v1 import engine_pb2_grpc as pb_grpc

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def observed() -> Iterator[tuple[EngineProcess, str]]:
    """An engine with metrics on a free port; yields it and the /metrics URL it announced."""
    with EngineProcess("--metrics-port", "0", "--log-format", "json") as engine:
        line = engine.process.stdout.readline()
        assert line.startswith("cadenza metrics on http://127.0.0.1:"), line  # loopback, as the engine
        yield engine, line.rsplit(" ", 1)[1].strip()


def scrape(url: str) -> Samples:
    """Every sample of the endpoint, parsed by prometheus_client's own parser."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_histograms_and_gauges_move_with_the_requests_served(observed) -> None:
    engine, url = observed
    before = scrape(url)
    assert value(before, "cadenza_workers") == 2 and value(before, "cadenza_queue_limit") == 8
    ids = {name: uuid.uuid4().hex for name in ("describe1", "describe2", "generate", "bad")}
    with grpc.insecure_channel(engine.target) as channel:
        stub = pb_grpc.EngineStub(channel)

        def meta(name: str) -> list[tuple[str, str]]:
            return [(REQUEST_ID_KEY, ids[name])]

        stub.Describe(pb.DescribeRequest(prompt="a calm folk tune for flute"), metadata=meta("describe1"), timeout=120)
        stub.Describe(pb.DescribeRequest(prompt="fast jazz with piano"), metadata=meta("describe2"), timeout=60)
        stub.Describe(pb.DescribeRequest(prompt="a march"), timeout=60)  # no id: the server makes one
        events = list(stub.Generate(pb.GenerateRequest(prompt="a folk tune for flute",
                                                       overrides=pb.Overrides(bars=1, seed=3)),
                                    metadata=meta("generate"), timeout=120))
        assert events[-1].HasField("result") and events[-1].result.midi
        with pytest.raises(grpc.RpcError) as refused:
            stub.Describe(pb.DescribeRequest(prompt="a tune", overrides=pb.Overrides(tempo_bpm=5000)),
                          metadata=meta("bad"), timeout=60)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    after = scrape(url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("cadenza_requests_total", rpc="Describe", code="OK") == 3
    assert moved("cadenza_requests_total", rpc="Describe", code="INVALID_ARGUMENT") == 1
    assert moved("cadenza_requests_total", rpc="Generate", code="OK") == 1
    assert moved("cadenza_requests_total", rpc="Render", code="OK") == 0
    assert moved("cadenza_request_duration_seconds_count", rpc="Describe") == 4
    assert moved("cadenza_request_duration_seconds_count", rpc="Generate") == 1
    assert moved("cadenza_request_duration_seconds_sum", rpc="Generate") > 0
    # Cumulative buckets: +Inf holds every request, and no bucket counts more than the one above it.
    assert moved("cadenza_request_duration_seconds_bucket", rpc="Generate", le="+Inf") == 1
    buckets = sorted((float(dict(labels)["le"]), v) for (name, labels), v in after.items()
                     if name == "cadenza_request_duration_seconds_bucket" and dict(labels)["rpc"] == "Describe")
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert value(after, "cadenza_queue_depth") == 0 and value(after, "cadenza_active_workers") == 0
    loads = {dict(labels)["model"]: v for (name, labels), v in after.items() if name == "cadenza_model_load_seconds"}
    generator = [v for model, v in loads.items() if model.startswith("generator:")]
    assert len(generator) == 1 and generator[0] > 0, loads  # the Generate above loaded the checkpoint

    lines = _log_lines(engine, set(ids.values()))
    records = [json.loads(line) for line in lines]  # every stderr line is one JSON object
    by_id = {r["request_id"]: r for r in records if r.get("logger") == "cadenza.rpc"}
    assert by_id[ids["describe1"]]["rpc"] == "Describe" and by_id[ids["describe1"]]["status"] == "OK"
    assert by_id[ids["generate"]]["rpc"] == "Generate" and by_id[ids["generate"]]["duration_ms"] > 0
    assert by_id[ids["bad"]]["status"] == "INVALID_ARGUMENT"
    assert all(by_id[i]["request_id_from"] == "client" for i in ids.values())
    made = [r for r in by_id.values() if r["request_id_from"] == "server" and r["rpc"] == "Describe"]
    assert len(made) == 1 and len(made[0]["request_id"]) == 32


def test_take_making_requests_log_their_session_and_take(observed) -> None:
    engine, _ = observed
    request_id = uuid.uuid4().hex
    with grpc.insecure_channel(engine.target) as channel:
        stub = pb_grpc.EngineStub(channel)
        session = f"obs-{uuid.uuid4().hex[:8]}"
        events = list(stub.Generate(pb.GenerateRequest(prompt="a folk tune for flute", session=session,
                                                       overrides=pb.Overrides(bars=1, seed=4)),
                                    metadata=[(REQUEST_ID_KEY, request_id)], timeout=120))
    take = events[-1].result.take
    assert take
    record = next(json.loads(line) for line in _log_lines(engine, {request_id}) if request_id in line)
    assert (record["session"], record["take"], record["status"]) == (session, take, "OK")


def _log_lines(engine: EngineProcess, wanted: set[str], timeout: float = 10) -> list[str]:
    """The engine's stderr lines so far, once every wanted request id has been logged."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in list(engine.log_tail) if line.strip()]
        if all(any(i in line for line in lines) for i in wanted) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)
