"""One engine per user: CLI calls without --engine find the running engine or start one that stays.

Every call here is a real `cadenza` subprocess; the engine is a real `cadenza serve` process on
loopback, announced in a runtime folder of the test's own.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mido
import pytest
import soundfile

from engine.serving.local import STATE_FILE, LocalEngine, announce, find_local_engine, pid_alive, stop_local_engine

PROMPT = "pop with a flute melody, piano, bass and drums, 8 bars"


@pytest.fixture()
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A runtime folder of this test's own (the CLI subprocesses inherit it); its engine is stopped after."""
    folder = tmp_path / "runtime"
    monkeypatch.setenv("CADENZA_RUNTIME_DIR", str(folder))
    monkeypatch.setenv("CADENZA_STATE", str(tmp_path / "state"))
    yield folder
    stop_local_engine()


def cli(*args: str, cwd: Path, timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "bridge.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    return done, time.monotonic() - began


def assert_audible(files: dict) -> None:
    """clip.mid read by mido, the mix and every stem read by soundfile at one length, spec.json parsed."""
    assert mido.MidiFile(files["midi"]).tracks
    json.loads(Path(files["spec"]).read_text())
    frames = soundfile.info(files["mix"]).frames
    assert frames > 0 and files["stems"]
    for path in files["stems"].values():
        assert soundfile.info(path).frames == frames
    assert files["picture"] and Path(files["picture"]).stat().st_size > 0


def test_the_second_generate_uses_the_engine_the_first_started_and_a_vary_is_audible(
        runtime: Path, tmp_path: Path) -> None:
    first, first_seconds = cli("generate", PROMPT, "--out", "one", "--seed", "1", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    engine = find_local_engine()
    assert engine is not None and pid_alive(engine.pid), "the first call left no engine running"
    second, second_seconds = cli("generate", PROMPT, "--out", "two", "--seed", "2", "--json", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert find_local_engine() == engine, "the second call did not use the engine the first one started"
    print(f"\ngenerate without --engine: first {first_seconds:.2f} s (starts the engine), "
          f"second {second_seconds:.2f} s (ratio {second_seconds / first_seconds:.2f})")
    made = json.loads(second.stdout)
    assert_audible(made)
    # The issue asks for the second call in under a quarter of the first's time. That is printed above, not
    # asserted: timings belong in benchmarks (tests/benchmarks/bench_local_engine.py), not in a test that
    # would fail by load alone; the figures are in the notes.
    assert json.loads(first.stdout)["session"] == made["session"] == tmp_path.name

    varied, vary_seconds = cli("vary", "last", "--parts", "bass", "--json", cwd=tmp_path)
    assert varied.returncode == 0, varied.stderr
    take = json.loads(varied.stdout)
    print(f"vary last: {vary_seconds:.2f} s")
    assert take["parent"] == made["take"] and take["operation"] == "vary"
    assert Path(take["folder"]) == (tmp_path / "cadenza-takes" / take["take"]).resolve()
    assert_audible(take)
    assert find_local_engine() == engine


def test_serve_stop_ends_the_users_engine_and_the_next_call_starts_another(runtime: Path, tmp_path: Path) -> None:
    done, _ = cli("describe", "a waltz", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    engine = find_local_engine()
    assert engine is not None
    stopped, _ = cli("serve", "--stop", cwd=tmp_path)
    assert stopped.returncode == 0 and str(engine.pid) in stopped.stdout
    assert not pid_alive(engine.pid) and not (runtime / STATE_FILE).exists()
    again, _ = cli("describe", "a waltz", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert find_local_engine().pid != engine.pid


def test_an_idle_engine_stops_itself_and_withdraws(runtime: Path, tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "bridge.cli", "serve", "--port", "0", "--idle-timeout", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert "listening on" in process.stdout.readline()
        announced = find_local_engine()
        assert announced is not None and announced.pid == process.pid and announced.idle_timeout == 2
        assert process.wait(timeout=60) == 0
        assert not (runtime / STATE_FILE).exists()
    finally:
        process.kill()


def test_a_connected_client_keeps_an_idle_engine_and_leaving_lets_it_stop(runtime: Path) -> None:
    from bridge.client import EngineClient

    process = subprocess.Popen([sys.executable, "-m", "bridge.cli", "serve", "--port", "0", "--idle-timeout", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert "listening on" in process.stdout.readline()
        client = EngineClient(find_local_engine().target)  # a bridge waiting for its next command
        client.check()
        time.sleep(6)
        assert process.poll() is None, "the engine stopped while a client was connected"
        client.close()
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()


def test_a_stale_announcement_is_ignored_and_removed(runtime: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    runtime.mkdir(mode=0o700)
    announce(LocalEngine(target="127.0.0.1:9", pid=dead.pid, store="/nowhere"), runtime)
    assert find_local_engine() is None
    assert not (runtime / STATE_FILE).exists()


def test_a_runtime_folder_others_can_write_is_refused(runtime: Path) -> None:
    """A folder others can write to could hold a planted engine.json: it is never read or written."""
    from engine.serving.local import runtime_dir

    runtime.mkdir(mode=0o700)
    runtime.chmod(0o777)
    with pytest.raises(PermissionError, match="not a private folder"):
        runtime_dir()
    assert find_local_engine() is None
    done, _ = cli("describe", "a waltz", "--json", cwd=runtime.parent)  # an engine of its own, and a note
    assert done.returncode == 0, done.stderr
    assert "not a private folder" in done.stderr and "using an engine for this call only" in done.stderr
    assert not (runtime / STATE_FILE).exists()


def test_takes_by_prefix_and_last_across_sessions(runtime: Path, tmp_path: Path) -> None:
    song, other = tmp_path / "song", tmp_path / "elsewhere"
    song.mkdir()
    other.mkdir()
    made, _ = cli("generate", "a folk tune, 4 bars", "--out", "a", "--midi-only", "--json", cwd=song)
    assert made.returncode == 0, made.stderr
    take = json.loads(made.stdout)["take"]
    assert json.loads(made.stdout)["mix"] is None and not (song / "a" / "mix.wav").exists()

    kept, _ = cli("keep", take[:4], "--json", cwd=other)  # another folder, so another default session
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout) == {"take": take, "session": "song", "verdict": "keep", "reason": "",
                                       "rating": 0}
    wrong, _ = cli("reject", take[:6], "--session", "elsewhere", cwd=other)
    assert wrong.returncode == 2
    assert "is not in session 'elsewhere'; it is in session 'song'" in wrong.stderr

    last, _ = cli("rate", "last", "4", "--json", cwd=other)  # 'elsewhere' has no takes: the newest anywhere
    assert last.returncode == 0, last.stderr
    assert json.loads(last.stdout)["take"] == take
    nothing, _ = cli("keep", "fff0000", cwd=other)
    assert nothing.returncode == 2 and "no take 'fff0000' in any session" in nothing.stderr
    bad, _ = cli("keep", "../x", cwd=other)
    assert bad.returncode == 2 and "hex digits" in bad.stderr


def test_the_users_engine_hands_rendered_files_over_through_the_runtime_folder(runtime: Path,
                                                                               tmp_path: Path) -> None:
    from bridge.client import EngineClient, FileHandoff
    from bridge.local_engine import connect_local
    from engine.serving.local import handoff_folder

    made, _ = cli("generate", PROMPT, "--out", "one", "--bars", "2", "--json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    midi = Path(json.loads(made.stdout)["midi"]).read_bytes()
    engine = find_local_engine()
    assert engine is not None and engine.handoff, "the engine announced no handoff secret"
    connection = connect_local()
    try:
        handed: dict = {}
        connection.client.render_files(midi, "wav", on_file=handed.__setitem__)
    finally:
        connection.close()
    folder = handoff_folder() / str(engine.pid)
    assert set(handed) == {"flute", "piano", "bass", "drums", "mix"}
    assert all(isinstance(path, Path) and path.parent == folder for path in handed.values())
    # the same render through the stream, by a client without the secret: the same bytes
    with EngineClient(engine.target, handoff=FileHandoff("not-the-secret", handoff_folder())) as stranger:
        streamed = stranger.render_files(midi, "wav").files
    for name, path in handed.items():
        assert path.read_bytes() == streamed[name], name
        path.unlink()
    assert not any(folder.iterdir()), "the engine left files nobody asked for"
    stop_local_engine()
    assert not folder.exists(), "the stopped engine left its handoff folder"


def test_a_client_takes_only_its_own_whole_files_from_the_handoff_folder(runtime: Path, tmp_path: Path) -> None:
    from bridge.client import FileHandoff, RequestRejected
    from protos.cadenza.v1 import engine_pb2 as pb

    folder = runtime / "handoff"
    (folder / "123").mkdir(parents=True)
    handoff = FileHandoff("secret", folder)
    good = folder / "123" / "1.wav"
    good.write_bytes(b"RIFF" + bytes(60))
    assert handoff.take(pb.FileChunk(part="mix", size=64, path=str(good))) == good
    outside = tmp_path / "secret.txt"
    outside.write_bytes(bytes(64))
    link = folder / "123" / "2.wav"
    link.symlink_to(outside)
    for chunk in (pb.FileChunk(part="mix", size=64, path=str(outside)),   # outside the folder
                  pb.FileChunk(part="mix", size=64, path=str(folder / "123" / ".." / ".." / ".." / "secret.txt")),
                  pb.FileChunk(part="mix", size=64, path=str(link)),      # a link out of it
                  pb.FileChunk(part="mix", size=65, path=str(good)),      # not the size the engine said
                  pb.FileChunk(part="mix", size=64, path="1.wav")):       # not an absolute path
        with pytest.raises(RequestRejected, match="mix"):
            handoff.take(chunk)
