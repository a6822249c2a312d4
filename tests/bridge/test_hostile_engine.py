"""Issue 18, the CLI's side: an engine that lies, and a CLI that is killed.

- Take ids come from the engine; a hostile one (a real gRPC server in this test answering with
  ``../`` or absolute ids) must not make `cadenza continue` write outside the working folder.
- An engine the CLI starts for itself ends when that CLI is killed with SIGKILL.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from protos.cadenza.v1 import engine_pb2 as pb
from protos.cadenza.v1 import engine_pb2_grpc as pb_grpc
from tests.plugin_host.clip_scores import make_score

REPO = Path(__file__).resolve().parents[2]


SPEC = pb.MusicSpec(prompt="lies", tempo_bpm=120.0, key=pb.Key(tonic="C", mode="major"),
                    meter=pb.Meter(numerator=4, denominator=4), bars=1, start_bar=1, style="pop")


class LyingEngine(pb_grpc.EngineServicer):
    """Answers Continue with a take whose id is whatever the test sets."""

    def __init__(self) -> None:
        self.take_id = ""

    def GetTake(self, request, context):  # the CLI looks the take up first (ids by prefix)
        return pb.TakeResult(take=request.take, operation="generate", spec=SPEC,
                             session=request.session or "lies")

    def Continue(self, request, context):
        return pb.TakeResult(take=self.take_id, operation="continue", midi=bytes(make_score(bars=1).dumps_midi()),
                             spec=SPEC, session=request.session)


@pytest.fixture()
def lying_engine() -> Iterator[tuple[str, LyingEngine]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = LyingEngine()
    pb_grpc.add_EngineServicer_to_server(servicer, server)
    checks = health.HealthServicer()
    checks.set("cadenza.v1.Engine", health_pb2.HealthCheckResponse.SERVING)  # what the CLI asks before calling
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(0)


def _cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "bridge.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def _files(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


def test_take_ids_from_an_engine_become_plain_folder_names_inside_the_working_folder(lying_engine, tmp_path):
    target, servicer = lying_engine
    work = tmp_path / "work"
    work.mkdir()
    outside = tmp_path / "elsewhere"
    for hostile in ("../../escaped", str(outside), "..", "a/../../b"):
        servicer.take_id = hostile
        before = _files(tmp_path)
        done = _cli("continue", "abc123", "--bars", "1", "--engine", target, "--json", "--midi-only", cwd=work)
        written = _files(tmp_path) - before
        assert all(work / "cadenza-takes" in path.parents for path in written), (hostile, written, done.stderr)
        assert not outside.exists()
        assert done.returncode == 0, (hostile, done.stderr)  # the take is written, under a plain name
        assert {path.name for path in written} == {"clip.mid", "spec.json"}, written


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def _listening(pid: int) -> bool:
    """Whether process ``pid`` has a listening TCP socket (its inodes against /proc/net/tcp{,6})."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                return True
    return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_killing_the_cli_with_sigkill_ends_the_engine_it_started(tmp_path):
    from tests.plugins.build import build_plugin

    # A plugin named on the command line: the call gets a private engine of its own (a shared
    # background engine, bridge/local_engine.py, is meant to outlive the call; this one is not).
    (tmp_path / "plugins").mkdir()
    drive = build_plugin("CadenzaDrive", tmp_path / "plugins")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    cli = subprocess.Popen([sys.executable, "-m", "bridge.cli", "generate", "jazz with piano, bass and drums, 64 bars",
                            "--plugin", f"bass={drive}", "--out", str(tmp_path / "clip"), "--quiet"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    engine = None
    deadline = time.monotonic() + 60
    while engine is None and time.monotonic() < deadline:
        for child in _children(cli.pid):
            if b"serve" in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0"):
                engine = child
        time.sleep(0.1)
    assert engine is not None, "the CLI started no engine"
    while not _listening(engine) and time.monotonic() < deadline:  # up, and working for the CLI
        time.sleep(0.2)
    assert _listening(engine), "the engine never listened"
    time.sleep(1)
    cli.send_signal(signal.SIGKILL)
    cli.wait(10)
    started = time.monotonic()
    while _alive(engine) and time.monotonic() - started < 30:
        time.sleep(0.2)
    ended = not _alive(engine)
    if not ended:
        os.kill(engine, signal.SIGKILL)
    print(f"the orphaned engine ended {time.monotonic() - started:.1f} s after its CLI was killed")
    assert ended, "the engine outlived the CLI that started it"
