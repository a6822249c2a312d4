"""What a running engine is doing, for operators: Prometheus metrics and one-JSON-object-a-line logs.

Every RPC passes through ``ObservingInterceptor`` (a gRPC server interceptor, so no servicer
method needs code of its own): it reads the caller's request id from the ``cadenza-request-id``
metadata (or makes one), counts the request by RPC and status code, times it into a histogram,
and logs one line with the request id, RPC, status, duration and the session/take it touched.
Queue depth and active workers are read from the engine's Admission at scrape time.

Each Engine has its own CollectorRegistry, so several engines in one process do not collide;
``start_metrics_server`` serves it over HTTP at /metrics.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

from engine.errors import SpecError
from engine.serving.admission import Admission
from engine.serving.request_ids import sent_request_id

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
HEALTH_SERVICE = "/grpc.health.v1.Health/"
LOG_FORMATS = ("json", "text")

log = logging.getLogger("cadenza.rpc")
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("cadenza_request_id", default=None)
_text_model_load: dict[str, float] = {}  # set by timed_warm_up; one text model per process


def current_request_id() -> str | None:
    """The id of the request this thread is serving (None outside an RPC)."""
    return _request_id.get()


def request_id_of(metadata) -> tuple[str, bool]:
    """The caller's request id from gRPC invocation metadata, or a fresh one; and whether the caller sent it.

    A malformed id is logged under a fresh one; the servicer refuses the call for it.
    """
    try:
        sent = sent_request_id(metadata)
    except SpecError:
        sent = None
    return (sent, True) if sent else (uuid.uuid4().hex, False)


def timed_warm_up(warm_up: Callable[[], None]) -> None:
    """Run the text model's warm-up and remember how long it took (cadenza_model_load_seconds{model="text"})."""
    started = time.perf_counter()
    warm_up()
    _text_model_load["text"] = time.perf_counter() - started


class _ModelLoads:
    """A collector reading model load times when scraped (models load lazily, after the registry exists)."""

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily("cadenza_model_load_seconds", "Seconds a model took to load, by model",
                                 labels=["model"])

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The metric's name for the registry, without collecting (which would import the generator)."""
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        # A generator never imported has loaded no model: importing it here would load torch (seconds).
        generator = sys.modules.get("engine.model.generator")
        family = self._family()
        for path, seconds in sorted(getattr(generator, "LOAD_SECONDS", {}).items()):
            family.add_metric([f"generator:{path.name}"], seconds)
        for name, seconds in sorted(_text_model_load.items()):
            family.add_metric([name], seconds)
        yield family


class EngineMetrics:
    """One engine's metrics in a registry of its own."""

    def __init__(self, admission: Admission) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("cadenza_requests", "RPCs finished, by method and gRPC status code",
                                ["rpc", "code"], registry=self.registry)
        self.latency = Histogram("cadenza_request_duration_seconds", "RPC wall time, from arrival to status",
                                 ["rpc"], buckets=LATENCY_BUCKETS, registry=self.registry)
        Gauge("cadenza_queue_depth", "Requests admitted and waiting for a worker",
              registry=self.registry).set_function(lambda: admission.waiting)
        Gauge("cadenza_active_workers", "Requests being worked on now",
              registry=self.registry).set_function(lambda: admission.active)
        Gauge("cadenza_workers", "Requests the engine works on at once (its limit)",
              registry=self.registry).set(admission.workers)
        Gauge("cadenza_queue_limit", "Requests that may wait for a worker (more are refused)",
              registry=self.registry).set(admission.queue)
        self.registry.register(_ModelLoads())

    def observe(self, rpc: str, code: str, seconds: float) -> None:
        self.requests.labels(rpc=rpc, code=code).inc()
        self.latency.labels(rpc=rpc).observe(seconds)


def _ids(message) -> dict[str, str]:
    """The session and take a request or reply names (looking inside a GenerateEvent's result)."""
    found: dict[str, str] = {}
    if message is None or not hasattr(message, "DESCRIPTOR"):
        return found
    fields = message.DESCRIPTOR.fields_by_name
    if "result" in fields and message.HasField("result"):
        found.update(_ids(message.result))
    for name in ("session", "take"):
        if name in fields and isinstance(value := getattr(message, name), str) and value:
            found[name] = value
    return found


@dataclass
class _Call:
    """One RPC being served: what the log line and the metrics need when it ends."""

    metrics: EngineMetrics | None
    rpc: str
    request_id: str
    client_id: bool
    context: grpc.ServicerContext
    started: float
    ids: dict[str, str]
    quiet: bool  # health checks: counted, logged only at DEBUG

    def note(self, message) -> None:
        self.ids.update(_ids(message))

    def finish(self, error: BaseException | None) -> None:
        code = self.context.code() if hasattr(self.context, "code") else None
        if code is None:
            if error is None:
                code = grpc.StatusCode.OK
            elif isinstance(error, GeneratorExit):  # the stream was closed before its end: the caller left
                remaining = self.context.time_remaining()
                code = (grpc.StatusCode.DEADLINE_EXCEEDED if remaining is not None and remaining <= 0
                        else grpc.StatusCode.CANCELLED)
            else:
                code = grpc.StatusCode.UNKNOWN
        name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        seconds = time.perf_counter() - self.started
        if self.metrics is not None:
            self.metrics.observe(self.rpc, name, seconds)
        fields = {"rpc": self.rpc, "status": name, "duration_ms": round(seconds * 1000, 2),
                  "request_id": self.request_id, "request_id_from": "client" if self.client_id else "server",
                  **self.ids}
        level = logging.DEBUG if self.quiet else (logging.WARNING if name in ("UNKNOWN", "INTERNAL") else logging.INFO)
        log.log(level, "%s %s in %.1f ms", self.rpc, name, seconds * 1000, extra={"fields": fields},
                exc_info=error if name == "UNKNOWN" and error is not None else None)


class ObservingInterceptor(grpc.ServerInterceptor):
    """Counts, times and logs every RPC, with the caller's request id in force while it is served."""

    def __init__(self, metrics: EngineMetrics | None) -> None:
        self.metrics = metrics

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:  # unknown method: gRPC answers UNIMPLEMENTED itself
            return None
        method = handler_call_details.method
        if getattr(handler.unary_stream, "experimental_non_blocking", False):
            # Health/Watch answers through a callback and must hold no thread between status
            # changes: wrapping it in a generator would pin one RPC thread per watcher.
            return handler
        rpc = method.rsplit("/", 1)[-1]
        quiet = method.startswith(HEALTH_SERVICE)
        request_id, from_client = request_id_of(handler_call_details.invocation_metadata)

        def start(request, context) -> _Call:
            return _Call(self.metrics, rpc, request_id, from_client, context, time.perf_counter(),
                         _ids(request), quiet)

        if handler.response_streaming:
            behavior = handler.unary_stream or handler.stream_stream

            def streaming(request, context):
                call = start(request, context)
                token = _request_id.set(request_id)
                try:
                    for reply in behavior(request, context):
                        call.note(reply)
                        yield reply
                except BaseException as error:
                    call.finish(error)
                    raise
                else:
                    call.finish(None)
                finally:
                    with contextlib.suppress(ValueError):  # closed by the garbage collector in another thread
                        _request_id.reset(token)

            wrapped = streaming
        else:
            behavior = handler.unary_unary or handler.stream_unary

            def unary(request, context):
                call = start(request, context)
                token = _request_id.set(request_id)
                try:
                    reply = behavior(request, context)
                except BaseException as error:
                    call.finish(error)
                    raise
                else:
                    call.note(reply)
                    call.finish(None)
                    return reply
                finally:
                    _request_id.reset(token)

            wrapped = unary
        make = {(False, False): grpc.unary_unary_rpc_method_handler,
                (False, True): grpc.unary_stream_rpc_method_handler,
                (True, False): grpc.stream_unary_rpc_method_handler,
                (True, True): grpc.stream_stream_rpc_method_handler}[
            (handler.request_streaming, handler.response_streaming)]
        return make(wrapped, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request id and RPC fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _RequestIdFilter(logging.Filter):
    """Stamps each record with the request id being served in its thread (if any)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or ""
        return True


def configure_logging(log_format: str = "json", level: str = "info") -> None:
    """Send the process's logs to stderr, as JSON lines or as text, each with its request id."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python warnings become log lines too, so stderr stays one format


@dataclass
class MetricsServer:
    """The HTTP server answering /metrics for one engine's registry."""

    server: WSGIServer
    thread: threading.Thread
    host: str

    @property
    def port(self) -> int:
        return self.server.server_port

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_metrics_server(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve ``registry`` at http://HOST:PORT/metrics (port 0: a free port; see ``.port``).

    ``localhost`` binds 127.0.0.1, as the engine's own loopback default does.
    """
    address = "127.0.0.1" if host == "localhost" else host.strip("[]")
    server, thread = start_http_server(port, addr=address, registry=registry)
    return MetricsServer(server, thread, address)
