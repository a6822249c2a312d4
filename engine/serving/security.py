"""Who may use the engine: loopback by default; elsewhere only with TLS and a bearer token.

The token is made at first run and kept mode 0600 in the user's config folder. A server
interceptor checks it on every RPC with a constant-time compare.
"""
from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import grpc

from engine.errors import Refused

TOKEN_FILE = "token"


class InsecureBind(Refused):
    """Listening beyond loopback was asked for without TLS and a token."""


def config_dir() -> Path:
    """The user's Cadenza config folder (CADENZA_CONFIG_DIR overrides it)."""
    if "CADENZA_CONFIG_DIR" in os.environ:
        return Path(os.environ["CADENZA_CONFIG_DIR"])
    from platformdirs import user_config_dir

    return Path(user_config_dir("cadenza"))


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_or_create_token(folder: Path | None = None) -> str:
    """The engine's bearer token, created (mode 0600) on first use."""
    path = (folder or config_dir()) / TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise PermissionError(f"{path} is readable by others (mode {mode:o}); run `chmod 600 {path}`") from None
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        token = secrets.token_urlsafe(32)
        handle.write(token + "\n")
    return token


def server_credentials(cert: Path, key: Path) -> grpc.ServerCredentials:
    """TLS credentials from PEM files."""
    return grpc.ssl_server_credentials([(Path(key).read_bytes(), Path(cert).read_bytes())])


# The health service answers without the token: it tells only SERVING or not, and its callers
# often cannot carry a token (gRPC's client-side health checking must see a wrong-token client's
# replicas as up, so that its calls get UNAUTHENTICATED rather than "no engine answers"; load
# balancers' and Kubernetes' probes).
OPEN_METHOD_PREFIX = "/grpc.health.v1.Health/"


class TokenInterceptor(grpc.ServerInterceptor):
    """Refuses every RPC but health checks whose `authorization` metadata is not `Bearer <token>`
    (UNAUTHENTICATED)."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails):
        if handler_call_details.method.startswith(OPEN_METHOD_PREFIX):
            return continuation(handler_call_details)
        metadata = dict(handler_call_details.invocation_metadata or ())
        given = str(metadata.get("authorization", "")).encode()
        if hmac.compare_digest(given, self._expected):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is None:
            return None

        def refuse(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(refuse, handler.request_deserializer,
                                                       handler.response_serializer)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(refuse, handler.request_deserializer,
                                                        handler.response_serializer)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(refuse, handler.request_deserializer,
                                                        handler.response_serializer)
        return grpc.stream_stream_rpc_method_handler(refuse, handler.request_deserializer,
                                                     handler.response_serializer)
