"""Issue 18, the CLI's low items: bad numbers, a full disk, a batch id that is the summary's name,
file modes a DAW running as another user can read. Against the shared real engine (``--engine``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tiny_disk import tiny_disk

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "bridge.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def _one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--seed", "-1", "--seed: must be 0-"),
    ("--bars", "100000000000000000000", "--bars: must be 1-256"),
    ("--bars", "1e20", "--bars: must be a whole number from 1 to 256"),
])
def test_out_of_range_numbers_are_a_one_line_usage_error_before_any_engine_starts(flag, value, says, tmp_path):
    done = _cli("generate", "calm piano", flag, value, "--out", str(tmp_path / "clip"), timeout=60)
    assert done.returncode == 2
    assert says in _one_line_error(done)
    assert not (tmp_path / "clip").exists()


def test_a_100k_character_key_gets_the_engines_refusal_not_a_broken_stream(engine_process, tmp_path):
    done = _cli("describe", "calm piano", "--key", "C" * 100_000, "--engine", engine_process.target)
    line = _one_line_error(done)
    assert line.startswith(("cadenza: error: key:", "cadenza: error: --key:")), line[:200]
    assert len(line) < 3000


@pytest.fixture()
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a clip's stems do not fit on it."""
    with tiny_disk(tmp_path / "tiny") as mount:
        yield mount


def test_a_full_disk_is_a_one_line_error_and_leaves_no_clip_behind(engine_process, full_disk):
    out = full_disk / "clip"
    done = _cli("generate", "disco with bass and drums, 8 bars", "--seed", "1", "--out", str(out), "--quiet",
                "--engine", engine_process.target)
    line = _one_line_error(done)
    assert "No space left on device" in line, line
    left = sorted(str(path.relative_to(full_disk)) for path in full_disk.rglob("*") if path.is_file())
    assert left == [], left


def test_a_batch_id_named_like_the_summary_fails_its_line_and_the_summary_is_written(engine_process, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "calm piano, 1 bar", "id": "summary.json"}) + "\n"
                       + json.dumps({"prompt": "calm piano, 1 bar", "id": "fine"}) + "\n")
    out = tmp_path / "batch"
    done = _cli("batch", str(prompts), "--out", str(out), "--engine", engine_process.target, "--quiet")
    assert "Traceback" not in done.stderr, done.stderr
    assert (out / "summary.json").is_file()
    clips = {clip["line"]: clip for clip in json.loads((out / "summary.json").read_text())["clips"]}
    assert clips[1]["status"] == "failed" and "summary" in clips[1]["error"], clips[1]
    assert clips[2]["status"] == "done" and (out / "fine" / "clip.mid").is_file(), clips[2]


def test_clip_files_get_the_users_umask_not_0600(engine_process, tmp_path):
    out = tmp_path / "clip"
    previous = os.umask(0o022)
    try:
        done = _cli("generate", "disco with bass and drums, 2 bars", "--seed", "2", "--out", str(out), "--quiet",
                    "--engine", engine_process.target)
    finally:
        os.umask(previous)
    assert done.returncode == 0, done.stderr
    modes = {str(path.relative_to(out)): oct(path.stat().st_mode & 0o777) for path in out.rglob("*") if path.is_file()}
    assert modes and set(modes.values()) == {"0o644"}, modes


def test_atomic_rewrite_keeps_the_files_mode(tmp_path):
    from bridge.atomic import write_bytes

    project = tmp_path / "song.ardour"
    project.write_text("<Session/>")
    project.chmod(0o644)
    write_bytes(project, b"<Session version='2'/>", overwrite=True)
    assert oct(project.stat().st_mode & 0o777) == "0o644"
    project.chmod(0o640)
    write_bytes(project, b"<Session version='3'/>", overwrite=True)
    assert oct(project.stat().st_mode & 0o777) == "0o640"


def test_the_sessions_database_is_private_to_its_user(tmp_path):
    from bridge.client import EngineClient, EngineProcess
    from protos.cadenza.v1 import engine_pb2 as pb

    state = tmp_path / f"state-{uuid.uuid4().hex[:6]}"
    with EngineProcess("--state", str(state)) as process, EngineClient(process.target) as client:
        client.check()
        client.generate("calm piano, 1 bar", pb.Overrides(seed=1), session="private")
        files = {path.name: oct(path.stat().st_mode & 0o777) for path in state.iterdir()}
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    assert files and set(files.values()) == {"0o600"}, files
