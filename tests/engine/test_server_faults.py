"""The engine under deadlines, cancellation, overload and shutdown: nothing lost, always an answer.

Each test runs against a real `cadenza serve` process with small admission limits.
"""
from __future__ import annotations

import signal
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bridge.client import EngineClient, EngineProcess, RequestRejected
from protos.cadenza.v1 import engine_pb2 as pb
from protos.cadenza.v1 import engine_pb2_grpc as pb_grpc

LONG_PROMPT = "jazz with piano, sax, trumpet, strings, guitar, vibes, bass and drums"
LONG = pb.Overrides(bars=256, tempo_bpm=60, seed=1)  # about 0.2 s to compose, minutes to render
BUSY = pb.Overrides(bars=32, tempo_bpm=60, seed=1)   # a few seconds to render


@pytest.fixture()
def small_engine():
    """One worker, one waiting slot: easy to fill."""
    with EngineProcess("--workers", "1", "--queue", "1") as process:
        with EngineClient(process.target) as client:
            client.check()
            yield process, client


def test_deadline_generate_gets_deadline_exceeded_and_the_next_request_is_served(small_engine):
    process, client = small_engine
    stub = pb_grpc.EngineStub(client.channel)
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.Generate(pb.GenerateRequest(prompt=LONG_PROMPT, overrides=LONG), timeout=0.1))
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    print(f"deadline answered after {1000 * (time.monotonic() - started):.0f} ms")
    assert client.describe("disco track").style == "disco"


def test_cancel_render_midway_frees_the_worker(small_engine):
    process, client = small_engine
    # BUSY, not LONG: 256 bars of 8 parts would pass the render memory budget and be refused
    midi = client.generate(LONG_PROMPT, BUSY).midi
    stub = pb_grpc.EngineStub(client.channel)
    call = stub.Render(pb.RenderRequest(midi=midi))
    first = next(call)  # the render has begun
    assert first.HasField("progress")
    call.cancel()
    # With one worker and one queue slot, two renders in a row only work if the cancelled one let go.
    short = client.generate("disco track, 1 bar", pb.Overrides(seed=2)).midi
    audio = client.render(short)
    assert audio.mix.shape[0] > 0


def test_overload_excess_requests_get_resource_exhausted_and_admitted_ones_finish(small_engine):
    process, client = small_engine
    midi = client.generate(LONG_PROMPT, BUSY).midi
    results: dict[int, object] = {}

    def render(index: int) -> None:
        try:
            results[index] = client.render(midi).mix.shape
        except RequestRejected as error:
            results[index] = error.code

    threads = [threading.Thread(target=render, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.3)  # the first is working, the second waiting
    started = time.monotonic()
    with pytest.raises(RequestRejected) as caught:
        client.render(midi)
    refused_after = time.monotonic() - started
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "busy" in str(caught.value)
    print(f"excess request refused after {1000 * refused_after:.0f} ms")
    for thread in threads:
        thread.join(timeout=120)
    assert all(isinstance(shape, tuple) for shape in results.values()), results


def test_shutdown_on_sigterm_finishes_in_flight_work_refuses_new_and_exits_zero():
    process = EngineProcess()
    client = EngineClient(process.target)
    client.check()
    midi = client.generate("disco with bass and drums", pb.Overrides(bars=8, tempo_bpm=60, seed=3)).midi
    in_flight = pb_grpc.EngineStub(client.channel).Render(pb.RenderRequest(midi=midi))
    assert next(in_flight).HasField("progress")  # admitted and working
    process.process.send_signal(signal.SIGTERM)
    # A plain channel: the client's own leaves a NOT_SERVING engine out (client-side health checking).
    health = health_pb2_grpc.HealthStub(grpc.insecure_channel(process.target))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the signal is handled asynchronously
        status = health.Check(health_pb2.HealthCheckRequest(service="cadenza.v1.Engine"), timeout=2).status
        if status != health_pb2.HealthCheckResponse.SERVING:
            break
        time.sleep(0.02)
    assert status == health_pb2.HealthCheckResponse.NOT_SERVING
    with pytest.raises(grpc.RpcError) as caught:
        pb_grpc.EngineStub(grpc.insecure_channel(process.target)).Describe(
            pb.DescribeRequest(prompt="disco"), timeout=2)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    rest = list(in_flight)
    assert any(event.HasField("header") for event in rest), "the in-flight render did not finish"
    assert rest[-1].progress.fraction == 1.0
    assert process.process.wait(timeout=30) == 0
    client.close()
