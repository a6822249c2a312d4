"""Who may use it: loopback by default; elsewhere only TLS plus a bearer token, checked every RPC."""
from __future__ import annotations

import datetime
import ipaddress
import os
import stat
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bridge.client import EngineClient, EngineProcess, EngineUnavailable, RequestRejected
from engine.serving.security import is_loopback, load_or_create_token


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost", True), ("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("engines.example", False),
])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_token_is_made_once_with_mode_0600(tmp_path):
    token = load_or_create_token(tmp_path)
    assert len(token) >= 32
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
    assert load_or_create_token(tmp_path) == token


def test_a_token_file_readable_by_others_is_refused(tmp_path):
    load_or_create_token(tmp_path)
    os.chmod(tmp_path / "token", 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        load_or_create_token(tmp_path)


def test_engine_refuses_to_listen_beyond_loopback_without_tls(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bridge.cli", "serve", "--host", "0.0.0.0", "--port", "0"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "CADENZA_CONFIG_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "without TLS and a token" in result.stderr


def test_remote_engine_needs_tls_and_the_token_on_every_rpc(tmp_path, monkeypatch):
    monkeypatch.setenv("CADENZA_CONFIG_DIR", str(tmp_path))
    cert, key = _self_signed(tmp_path)
    with EngineProcess("--host", "0.0.0.0", "--tls-cert", str(cert), "--tls-key", str(key)) as process:
        port = process.target.rsplit(":", 1)[1]
        target = f"localhost:{port}"  # a loopback connection to the any-address listener
        token = (tmp_path / "token").read_text().strip()
        ca = cert.read_bytes()
        with EngineClient(target, tls_ca=ca, token=token) as client:
            client.check()
            assert client.describe("disco track").style == "disco"
        with EngineClient(target, tls_ca=ca) as no_token:  # health checks are open, over TLS
            no_token.check()
        for wrong in ("", "not-the-token"):
            with EngineClient(target, tls_ca=ca, token=wrong or None) as client:
                with pytest.raises(RequestRejected) as caught:
                    client.describe("disco track")
                assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
        with EngineClient(target) as plaintext:  # no TLS at all: the handshake fails
            with pytest.raises(EngineUnavailable):
                plaintext.describe("disco track")
