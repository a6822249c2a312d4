"""The Engine gRPC service: a thin servicer over understand, compose and render.

``serve()`` owns the server's life: it binds loopback by default, reports health,
and on SIGTERM/SIGINT stops taking requests and lets in-flight ones finish.
"""
from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from engine.compose import compose
from engine.config import AUDIO_CHUNK_FRAMES, DEFAULT_SAMPLE_RATE, SAMPLE_RATES
from engine.convert import overrides_from_pb, spec_to_pb
from engine.errors import SpecError
from engine.generator import CheckpointMissing
from engine.midi import score_to_smf, smf_to_score
from engine.understand import understand
from protos.cadenza.v1 import engine_pb2 as pb
from protos.cadenza.v1 import engine_pb2_grpc as pb_grpc

log = logging.getLogger("cadenza.engine")
SERVICE_NAME = "cadenza.v1.Engine"
DEFAULT_HOST = "127.0.0.1"
SHUTDOWN_GRACE_SECONDS = 10.0


def _progress(stage: str, fraction: float, message: str = "") -> pb.Progress:
    return pb.Progress(stage=stage, fraction=fraction, message=message)


def _check_sample_rate(rate: int) -> int:
    if rate == 0:
        return DEFAULT_SAMPLE_RATE
    if rate not in SAMPLE_RATES:
        raise SpecError("sample_rate", f"must be one of {', '.join(map(str, SAMPLE_RATES))} Hz, got {rate}")
    return rate


class EngineServicer(pb_grpc.EngineServicer):
    """Answers Describe, Generate and Render; bad requests get INVALID_ARGUMENT."""

    def Describe(self, request: pb.DescribeRequest, context: grpc.ServicerContext) -> pb.MusicSpec:
        try:
            return spec_to_pb(understand(request.prompt, overrides_from_pb(request.overrides)))
        except SpecError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))

    def Generate(self, request: pb.GenerateRequest, context: grpc.ServicerContext) -> Iterator[pb.GenerateEvent]:
        try:
            yield pb.GenerateEvent(progress=_progress("understand", 0.0, "reading the prompt"))
            spec = understand(request.prompt, overrides_from_pb(request.overrides))
            yield pb.GenerateEvent(progress=_progress("compose", 0.3, f"composing {spec.bars} bars"))
            midi = score_to_smf(compose(spec))
            yield pb.GenerateEvent(progress=_progress("compose", 1.0, "done"))
            yield pb.GenerateEvent(result=pb.GenerateResult(spec=spec_to_pb(spec), midi=midi))
        except SpecError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except CheckpointMissing as error:  # the install is broken, not the request
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))

    def Render(self, request: pb.RenderRequest, context: grpc.ServicerContext) -> Iterator[pb.RenderEvent]:
        from plugin_host.render import render  # heavy: loaded on first render only

        try:
            sample_rate = _check_sample_rate(request.sample_rate)
            score = smf_to_score(request.midi)
        except SpecError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        events: queue.Queue = queue.Queue()
        outcome: dict = {}

        def work() -> None:
            try:
                outcome["stems"] = render(score, sample_rate, progress=lambda f: events.put(f))
            except Exception as error:  # reported to the client below, not lost in a thread
                outcome["error"] = error
            events.put(None)

        threading.Thread(target=work, name="render", daemon=True).start()
        yield pb.RenderEvent(progress=_progress("render", 0.0, f"rendering {len(score.tracks)} parts"))
        while (fraction := events.get()) is not None:
            yield pb.RenderEvent(progress=_progress("render", 0.9 * fraction))
        if "error" in outcome:
            log.exception("render failed", exc_info=outcome["error"])
            context.abort(grpc.StatusCode.INTERNAL, f"render failed: {outcome['error']}")
        stems = outcome["stems"]
        names = list(stems.parts)
        yield pb.RenderEvent(header=pb.StemsHeader(sample_rate=stems.sample_rate, channels=stems.channels,
                                                   frames=stems.frames, parts=names))
        for name, audio in [*stems.parts.items(), ("mix", stems.mix)]:
            for start in range(0, max(1, stems.frames), AUDIO_CHUNK_FRAMES):
                block = np.ascontiguousarray(audio[start:start + AUDIO_CHUNK_FRAMES], dtype="<f4")
                yield pb.RenderEvent(chunk=pb.AudioChunk(part=name, start_frame=start, samples=block.tobytes()))
        yield pb.RenderEvent(progress=_progress("render", 1.0, "done"))


def build_server(host: str = DEFAULT_HOST, port: int = 0, max_workers: int = 4) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A started server on ``host:port`` (0 = any free port); returns it, its port and its health."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"))
    pb_grpc.add_EngineServicer_to_server(EngineServicer(), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port} (in use, or not an address of this machine)")
    server.start()
    for service in ("", SERVICE_NAME):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    return server, bound, health_servicer


def serve(host: str = DEFAULT_HOST, port: int = 0) -> int:
    """Run the engine until SIGTERM/SIGINT; prints one line with the address it listens on."""
    server, bound, health_servicer = build_server(host, port)
    stopping = threading.Event()

    def stop(signum, frame) -> None:
        for service in ("", SERVICE_NAME):
            health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"cadenza engine listening on {host}:{bound}", flush=True)
    stopping.wait()
    server.stop(SHUTDOWN_GRACE_SECONDS).wait()
    print("cadenza engine stopped", file=sys.stderr, flush=True)
    return 0
