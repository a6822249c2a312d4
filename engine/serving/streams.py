"""Guards against clients that hold the engine's threads: health in threads of its own with bounded
Watch streams, and a write deadline on every streamed reply message.

- ``HealthGuard`` (the outermost server interceptor): ``grpc.health.v1.Health`` answers without a
  token, so it must cost a stranger nothing it could pile up. Check runs on a small pool of its
  own (busy Engine RPCs cannot starve it, nor it them); Watch runs non-blocking (a watcher holds
  no thread between status changes) and at most HEALTH_WATCH_PER_PEER streams from one address,
  HEALTH_WATCH_MAX in all, are open; more get RESOURCE_EXHAUSTED.
- ``WriteDeadline``: a server-streaming reply message the client has not taken within
  STREAM_WRITE_TIMEOUT_SECONDS cancels the call, so a client that opens a Render and never reads it
  cannot keep a worker (gRPC's sync server otherwise waits on flow control for ever).
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from concurrent import futures

import grpc

from engine.config import (
    HEALTH_THREADS,
    HEALTH_WATCH_MAX,
    HEALTH_WATCH_PER_PEER,
    STREAM_WRITE_TIMEOUT_SECONDS,
)

HEALTH_PREFIX = "/grpc.health.v1.Health/"
WATCHDOG_TICK_SECONDS = 0.25
log = logging.getLogger("cadenza.streams")


def peer_address(peer: str) -> str:
    """The address part of gRPC's peer string ("ipv4:127.0.0.1:5000" -> "127.0.0.1", "ipv6:[::1]:5" -> "::1")."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6") and ":" in rest:
        return rest.rsplit(":", 1)[0].strip("[]")
    return peer  # unix sockets and the like: the whole string


class HealthGuard(grpc.ServerInterceptor):
    """Health Check on its own threads; Watch non-blocking and bounded per address and in all."""

    def __init__(self, total: int = HEALTH_WATCH_MAX, per_peer: int = HEALTH_WATCH_PER_PEER,
                 threads: int = HEALTH_THREADS) -> None:
        self.total, self.per_peer = total, per_peer
        self.pool = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="health")
        self._lock = threading.Lock()
        self._open: collections.Counter[str] = collections.Counter()

    @property
    def watching(self) -> int:
        """Watch streams open now."""
        with self._lock:
            return sum(self._open.values())

    def _enter(self, peer: str) -> str | None:
        """Count a new Watch from ``peer``; the reason it is refused, or None."""
        with self._lock:
            if self._open[peer] >= self.per_peer:
                return f"{self.per_peer} health watches are already open from {peer}; close some first"
            if sum(self._open.values()) >= self.total:
                return f"{self.total} health watches are already open; try again later"
            self._open[peer] += 1
            return None

    def _leave(self, peer: str) -> None:
        with self._lock:
            self._open[peer] -= 1
            if self._open[peer] <= 0:
                del self._open[peer]

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(HEALTH_PREFIX):
            return handler
        if handler.unary_unary is not None:  # Check
            check = handler.unary_unary

            def checked(request, context):
                return check(request, context)

            checked.experimental_thread_pool = self.pool
            return grpc.unary_unary_rpc_method_handler(checked, handler.request_deserializer,
                                                       handler.response_serializer)
        if handler.unary_stream is not None and getattr(handler.unary_stream, "experimental_non_blocking", False):
            watch = handler.unary_stream

            def watched(request, context, send_response_callback=None):
                peer = peer_address(context.peer())
                refused = self._enter(peer)
                if refused:
                    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, refused)
                if not context.add_callback(lambda: self._leave(peer)):  # the call already ended
                    self._leave(peer)
                    return None
                return watch(request, context, send_response_callback)

            watched.experimental_non_blocking = True
            watched.experimental_thread_pool = self.pool
            return grpc.unary_stream_rpc_method_handler(watched, handler.request_deserializer,
                                                        handler.response_serializer)
        return handler

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class WriteDeadline(grpc.ServerInterceptor):
    """Cancels a server-streaming call whose client leaves a reply message untaken for ``timeout`` s.

    The sync server sends each message the handler yields before asking for the next; the time
    between a yield and the handler's resumption is that send. One watchdog thread checks the
    sends in progress every WATCHDOG_TICK_SECONDS.
    """

    def __init__(self, timeout: float = STREAM_WRITE_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._sending: dict[int, tuple[float, grpc.ServicerContext, str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.cancelled = 0
        self._thread = threading.Thread(target=self._watch, name="write-deadline", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(WATCHDOG_TICK_SECONDS):
            now = time.monotonic()
            with self._lock:
                late = [(key, context, rpc) for key, (deadline, context, rpc) in self._sending.items()
                        if deadline < now]
                for key, _, _ in late:
                    del self._sending[key]
            for _, context, rpc in late:
                self.cancelled += 1
                log.warning("%s: the client took no reply message for %.0f s; ending the call", rpc, self.timeout)
                context.cancel()

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_stream is None or \
                handler_call_details.method.startswith(HEALTH_PREFIX):
            return handler
        stream = handler.unary_stream
        rpc = handler_call_details.method.rsplit("/", 1)[-1]

        def guarded(request, context):
            key = id(context)
            try:
                for reply in stream(request, context):
                    with self._lock:
                        self._sending[key] = (time.monotonic() + self.timeout, context, rpc)
                    yield reply
                    with self._lock:
                        self._sending.pop(key, None)
            finally:
                with self._lock:
                    self._sending.pop(key, None)

        return grpc.unary_stream_rpc_method_handler(guarded, handler.request_deserializer,
                                                    handler.response_serializer)

    def close(self) -> None:
        self._stop.set()
