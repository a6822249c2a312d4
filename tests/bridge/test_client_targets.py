"""One client, many replicas: targets, round_robin, health checking, retries and request ids.

Real engines (EngineProcess) show the spread and the survival of a SIGKILL; a tiny real gRPC
server (tests/bridge/replicas.py) scripts the faults a real engine cannot be made to show on
cue: an UNAVAILABLE on the first attempt, a stream cut after its first message, NOT_SERVING.
"""
from __future__ import annotations

import signal
import threading
import time
from collections import Counter

import pytest

from bridge.client import EngineClient
from bridge.targets import BadTarget, check_target
from protos.cadenza.v1 import engine_pb2 as pb
from tests.bridge.replicas import FaultServer, FaultyEngine, ipv4_target, start_replicas
from tests.conftest import run_cli


@pytest.mark.parametrize("target", ["127.0.0.1:50051", "localhost:7", "[::1]:50051", "engines.example:443",
                                    "ipv4:127.0.0.1:50051,127.0.0.1:50052", "ipv6:[::1]:1,[::1]:2",
                                    "dns:///engines.example:50051", "dns:engines:1", "unix:/tmp/cadenza.sock"])
def test_accepted_targets(target: str) -> None:
    assert check_target(target) == target


@pytest.mark.parametrize(("target", "why"), [("http://engine:50051", "unknown scheme 'http'"),
                                            ("engine", "not HOST:PORT"),
                                            ("ipv4:127.0.0.1", "'127.0.0.1' is not an ipv4 address with a port"),
                                            ("127.0.0.1:99999", "port 99999 is outside 1-65535"),
                                            ("dns:///", "dns:///NAME:PORT"),
                                            ("a b:1", "spaces")])
def test_bad_targets_name_engine_and_the_accepted_forms(target: str, why: str) -> None:
    with pytest.raises(BadTarget) as caught:
        EngineClient(target)
    message = str(caught.value)
    assert message.startswith(f"--engine {target!r}") and why in message
    assert "ipv4:ADDR:PORT" in message and "dns:///NAME:PORT" in message


def test_cli_refuses_a_bad_target_before_any_work() -> None:
    done = run_cli("describe", "a jazz trio", "--engine", "tcp://engines:50051", timeout=60)
    assert done.returncode == 2
    assert "--engine 'tcp://engines:50051' is not a gRPC target" in done.stderr
    assert "dns:///NAME:PORT" in done.stderr and "Traceback" not in done.stderr


def test_every_call_carries_a_fresh_request_id() -> None:
    with FaultServer(FaultyEngine()) as server, EngineClient(server.target) as client:
        client.describe("one")
        client.describe("two")
        client.generate("three")
        ids = [call.request_id for call in server.servicer.calls]
    assert len(ids) == 3 and all(ids) and len(set(ids)) == 3
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)  # uuid4 hex


def test_grpc_retries_an_unavailable_call_with_the_same_request_id() -> None:
    with FaultServer(FaultyEngine(unary_failures=1)) as server, EngineClient(server.target) as client:
        spec = client.describe("a calm piano piece")
        calls = server.servicer.calls
    assert spec.style == "fake"
    assert [c.method for c in calls] == ["Describe", "Describe"]  # the service config's retryPolicy
    assert calls[0].request_id == calls[1].request_id is not None


def test_a_stream_cut_mid_way_is_restarted_with_the_same_request_id() -> None:
    progress: list[float] = []
    with FaultServer(FaultyEngine(stream_failures=1)) as server, EngineClient(server.target) as client:
        result = client.generate("a funk groove", on_progress=lambda event: progress.append(event.fraction))
        calls = server.servicer.calls
    assert result.midi == b"MThd"
    assert [c.method for c in calls] == ["Generate", "Generate"]
    assert calls[0].request_id == calls[1].request_id is not None
    assert progress == [0.5, 0.5, 1.0]  # the second attempt's progress starts over


def test_a_stream_that_keeps_failing_gives_up_and_says_so() -> None:
    from bridge.client import EngineUnavailable
    from bridge.targets import STREAM_RETRY_ATTEMPTS

    with FaultServer(FaultyEngine(stream_failures=99)) as server, EngineClient(server.target) as client:
        with pytest.raises(EngineUnavailable, match="mid-stream"):
            client.generate("a funk groove")
        assert len(server.servicer.calls) == STREAM_RETRY_ATTEMPTS


def test_health_checking_keeps_calls_off_a_not_serving_replica() -> None:
    with FaultServer(FaultyEngine(name="a"), serving=True) as a, \
            FaultServer(FaultyEngine(name="b"), serving=False) as b, \
            EngineClient(f"ipv4:{a.target},{b.target}") as client:
        client.check()
        first = Counter(client.describe("x").style for _ in range(12))
        a.set_serving(False)
        b.set_serving(True)
        deadline = time.monotonic() + 10  # health is watched: the switch reaches the client soon
        while client.describe("x").style != "b" and time.monotonic() < deadline:
            time.sleep(0.05)
        second = Counter(client.describe("x").style for _ in range(12))
    assert first == {"a": 12}
    assert second == {"b": 12}


def _takes(target: str, session: str) -> int:
    with EngineClient(target) as client:
        return len(client.call("History", pb.HistoryRequest(session=session)).takes)


def test_round_robin_spreads_calls_over_two_engines() -> None:
    replicas = start_replicas(2)
    try:
        with EngineClient(ipv4_target(replicas)) as client:
            client.check()
            for seed in range(8):
                client.generate("lofi hip hop", pb.Overrides(bars=1, seed=seed), session="spread")
        # Each replica records its own takes in its own sessions folder: a real count per replica.
        counts = [_takes(replica.target, "spread") for replica in replicas]
    finally:
        for replica in replicas:
            replica.close()
    assert sum(counts) == 8
    assert all(count >= 2 for count in counts), counts


def test_calls_survive_a_replica_killed_mid_stream() -> None:
    replicas = start_replicas(2)
    results: list[int] = []
    errors: list[Exception] = []

    def render(client: EngineClient, seed: int) -> None:
        try:
            result = client.generate("a big band swing tune", pb.Overrides(bars=8, seed=seed))
            audio = client.render(result.midi, 22050, bars=8)
            results.append(audio.mix.shape[0])
        except Exception as error:  # noqa: BLE001 - the test reports every failure
            errors.append(error)

    try:
        with EngineClient(ipv4_target(replicas)) as client:
            client.check()
            time.sleep(0.5)  # both subchannels healthy, so round_robin alternates
            threads = [threading.Thread(target=render, args=(client, seed)) for seed in range(4)]
            for thread in threads:
                thread.start()
            time.sleep(1.5)  # two calls are running on each replica
            replicas[0].process.send_signal(signal.SIGKILL)
            for thread in threads:
                thread.join(timeout=120)
            after = client.generate("a waltz", pb.Overrides(bars=1))  # new calls go to the survivor
    finally:
        for replica in replicas:
            replica.close()
    assert errors == []
    assert len(results) == 4 and all(frames > 0 for frames in results)
    assert after.midi.startswith(b"MThd")
