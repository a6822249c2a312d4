"""How a client reaches one or many engine replicas: the gRPC target it accepts and the channel's
service config (round_robin over the resolved addresses, client-side health checking on the
engine's health service, retries of UNAVAILABLE), kept here as data in one place.

gRPC does the balancing itself: a target such as ``ipv4:127.0.0.1:50051,127.0.0.1:50052`` or
``dns:///engines.example:50051`` resolves to several addresses, ``round_robin`` keeps a
subchannel to each, and health checking leaves out any replica whose health service does not
say SERVING for ``cadenza.v1.Engine`` (a replica shutting down, or not yet up).
"""
from __future__ import annotations

import json
import re

from engine.errors import UsageError
from engine.serving.request_ids import REQUEST_ID_KEY  # noqa: F401  (the metadata key the engine reads)

ENGINE_SERVICE = "cadenza.v1.Engine"

# gRPC's own retries: a call that fails UNAVAILABLE before any response message arrived (a
# replica gone, refusing while shutting down) is tried again, on another replica under round_robin.
RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}

SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "healthCheckConfig": {"serviceName": ENGINE_SERVICE},
    "methodConfig": [{"name": [{"service": ENGINE_SERVICE}], "retryPolicy": RETRY_POLICY}],
}

# A server stream (Generate, Render) that fails UNAVAILABLE after messages arrived is not retried
# by gRPC; the client starts it again with the same request id, at most this often and this long.
STREAM_RETRY_ATTEMPTS = 3
STREAM_RETRY_SECONDS = 300.0
STREAM_RETRY_BACKOFF_SECONDS = 0.2

ACCEPTED_FORMS = ("HOST:PORT (e.g. 127.0.0.1:50051, [::1]:50051, engines.example:50051)",
                  "ipv4:ADDR:PORT[,ADDR:PORT...] (e.g. ipv4:127.0.0.1:50051,127.0.0.1:50052)",
                  "ipv6:[ADDR]:PORT[,[ADDR]:PORT...]",
                  "dns:///NAME:PORT (e.g. dns:///engines.example:50051; every address NAME resolves to)",
                  "unix:PATH")


class BadTarget(UsageError):
    """An --engine value that is not a gRPC target this client accepts."""


def channel_options() -> list[tuple[str, object]]:
    """Channel arguments that turn the service config on.

    The service config given here wins over one a DNS TXT record might carry, so a
    ``dns:///`` target behaves the same as an ``ipv4:`` one.
    """
    return [("grpc.service_config", json.dumps(SERVICE_CONFIG)),
            ("grpc.service_config_disable_resolution", 1),
            ("grpc.enable_retries", 1)]


_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
_V4 = r"(?:\d{1,3}(?:\.\d{1,3}){3})"
_V6 = r"\[[0-9A-Fa-f:.%A-Za-z]+\]"
_PORT = r"(\d{1,5})"
_PLAIN = re.compile(rf"^(?:{_HOST}|{_V6}):{_PORT}$")
_IPV4 = re.compile(rf"^{_V4}:{_PORT}$")
_IPV6 = re.compile(rf"^{_V6}:{_PORT}$")
_DNS = re.compile(rf"^dns:(?://[^/]*/)?{_HOST}(?::{_PORT})?$")


def _fail(target: str, why: str) -> BadTarget:
    forms = "\n  ".join(ACCEPTED_FORMS)
    return BadTarget(f"--engine {target!r} is not a gRPC target this client accepts ({why}); use one of:\n  {forms}")


def _check_ports(target: str, ports: list[str]) -> None:
    for port in ports:
        if port and not 1 <= int(port) <= 65535:
            raise _fail(target, f"port {port} is outside 1-65535")


def check_target(target: str) -> str:
    """``target`` unchanged if it is a gRPC target of an accepted form; else BadTarget naming --engine."""
    if not target or target != target.strip() or any(c.isspace() for c in target):
        raise _fail(target, "empty or contains spaces")
    if target.startswith("unix:") or target.startswith("unix-abstract:"):
        if target.partition(":")[2]:
            return target
        raise _fail(target, "no socket path")
    for scheme, pattern in (("ipv4:", _IPV4), ("ipv6:", _IPV6)):
        if target.startswith(scheme):
            addresses = target[len(scheme):].split(",")
            matches = [pattern.match(address) for address in addresses]
            if not all(matches):
                bad = next(a for a, m in zip(addresses, matches, strict=True) if not m)
                raise _fail(target, f"{bad!r} is not an {scheme[:-1]} address with a port")
            _check_ports(target, [m.group(1) for m in matches])
            return target
    if target.startswith("dns:"):
        match = _DNS.match(target)
        if not match:
            raise _fail(target, "a dns target is dns:///NAME:PORT")
        _check_ports(target, [match.group(1) or ""])
        return target
    match = _PLAIN.match(target)
    if not match:
        scheme = target.partition(":")[0]
        why = f"unknown scheme {scheme!r}" if "://" in target or target.startswith(scheme + ":/") else \
            "not HOST:PORT"
        raise _fail(target, why)
    _check_ports(target, [match.group(1)])
    return target
