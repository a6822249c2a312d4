"""Health probe for a TLS engine: exit 0 if cadenza.v1.Engine is SERVING, 1 otherwise.

Kubernetes' native `grpc:` probe speaks plaintext only, and an engine listening beyond loopback
speaks TLS only (SECURITY.md), so the Deployment's probes run this inside the container instead.
The health service needs no token; the TLS certificate is checked against ``--ca``.

    python deploy/probe.py --target localhost:50051 --ca /etc/cadenza/tls/tls.crt [--timeout 2]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVICE = "cadenza.v1.Engine"


def probe(target: str, ca: Path | None, timeout: float, server_name: str | None) -> str:
    """The health status name of ``SERVICE`` at ``target`` (raises grpc.RpcError if none answers)."""
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    channel = (grpc.secure_channel(target, grpc.ssl_channel_credentials(ca.read_bytes()), options=options)
               if ca else grpc.insecure_channel(target))
    with channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE),
                                                          timeout=timeout)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="localhost:50051")
    parser.add_argument("--ca", type=Path, help="PEM that signed the engine's certificate (omit: plaintext)")
    parser.add_argument("--server-name", help="the name the certificate is for, if not the target's host")
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    try:
        status = probe(args.target, args.ca, args.timeout, args.server_name)
    except grpc.RpcError as error:
        print(f"{args.target}: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    print(f"{args.target}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
