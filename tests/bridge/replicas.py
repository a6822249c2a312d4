"""Test rigs for many engines: real engine processes side by side, and a tiny real gRPC Engine
server whose faults the test scripts (fail the first attempt UNAVAILABLE, mid-stream or not; a
health status of NOT_SERVING), recording every call's metadata."""
from __future__ import annotations

import tempfile
import threading
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from bridge.client import EngineProcess
from bridge.targets import ENGINE_SERVICE, REQUEST_ID_KEY
from protos.cadenza.v1 import engine_pb2 as pb
from protos.cadenza.v1 import engine_pb2_grpc as pb_grpc


def start_replicas(count: int) -> list[EngineProcess]:
    """``count`` real engines on free loopback ports, each with its own sessions folder."""
    replicas: list[EngineProcess] = []
    try:
        for _ in range(count):
            replicas.append(EngineProcess("--state", tempfile.mkdtemp(prefix="cadenza-replica-")))
    except BaseException:
        for replica in replicas:
            replica.close()
        raise
    return replicas


def ipv4_target(replicas: list[EngineProcess]) -> str:
    """One gRPC target naming every replica: ipv4:127.0.0.1:A,127.0.0.1:B,..."""
    return "ipv4:" + ",".join(replica.target for replica in replicas)


@dataclass
class Recorded:
    """One call as the server saw it."""

    method: str
    request_id: str | None


@dataclass
class FaultyEngine(pb_grpc.EngineServicer):
    """Describe and Generate that answer trivially, after the scripted number of failures.

    ``unary_failures``: Describe calls refused UNAVAILABLE (before any reply) first.
    ``stream_failures``: Generate calls that send one progress event, then fail UNAVAILABLE.
    """

    name: str = "fake"
    unary_failures: int = 0
    stream_failures: int = 0
    calls: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _record(self, method: str, context: grpc.ServicerContext) -> None:
        metadata = dict(context.invocation_metadata())
        with self.lock:
            self.calls.append(Recorded(method, metadata.get(REQUEST_ID_KEY)))

    def Describe(self, request: pb.DescribeRequest, context: grpc.ServicerContext) -> pb.MusicSpec:
        self._record("Describe", context)
        with self.lock:
            fail = self.unary_failures > 0
            self.unary_failures -= fail
        if fail:
            context.abort(grpc.StatusCode.UNAVAILABLE, "scripted: replica going away")
        return pb.MusicSpec(style=self.name, bars=4)

    def Generate(self, request: pb.GenerateRequest, context: grpc.ServicerContext):
        self._record("Generate", context)
        with self.lock:
            fail = self.stream_failures > 0
            self.stream_failures -= fail
        yield pb.GenerateEvent(progress=pb.Progress(stage="compose", fraction=0.5))
        if fail:
            context.abort(grpc.StatusCode.UNAVAILABLE, "scripted: replica killed mid-stream")
        yield pb.GenerateEvent(progress=pb.Progress(stage="compose", fraction=1.0))
        yield pb.GenerateEvent(result=pb.GenerateResult(spec=pb.MusicSpec(style=self.name), midi=b"MThd"))


class FaultServer:
    """A real gRPC server on a free loopback port with a FaultyEngine and the health service."""

    def __init__(self, servicer: FaultyEngine, serving: bool = True) -> None:
        self.servicer = servicer
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_EngineServicer_to_server(servicer, self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.target = f"127.0.0.1:{self.port}"
        self.set_serving(serving)
        self.server.start()

    def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", ENGINE_SERVICE):
            self.health.set(service, status)

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop(0).wait()
