"""`cadenza batch`: lines to clip folders over two real engine replicas, interrupted and resumed.

Folders are judged by independent readers (mido, soundfile, json), not by the batch's own word.
"""
from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile

from bridge.batch import read_prompts, unwhole_reason
from bridge.clip_files import write_clip
from tests.bridge.replicas import ipv4_target, start_replicas
from tests.conftest import DEV_PROMPTS, run_cli

# The same format, for a machine without the shared dev set (CI).
FALLBACK_PROMPTS = [
    '{"prompt": "Funky disco groove at 118 BPM in E minor, 8 bars", "expect": {"tempo_bpm": 118}}',
    '{"prompt": "Slow melancholic piano ballad in D minor, 3/4 time", "expect": {"meter": "3/4"}}',
    '{"prompt": "Bossa nova with nylon guitar in F major at 132 bpm", "expect": {"tempo_bpm": 132}}',
    '{"prompt": "Driving techno at 128 BPM", "expect": {"tempo_bpm": 128}}',
    '{"prompt": "A gentle folk waltz on acoustic guitar", "expect": {"meter": "3/4"}}',
    '{"prompt": "Big band swing at 160 bpm", "expect": {"tempo_bpm": 160}}',
]
LINES = 12  # enough work that a batch stopped after its first whole clip still has lines to do
BAD_LINE = '{"prompt": "a tango", "bars": "eight"}'


def _dev_prompts() -> list[str]:
    if DEV_PROMPTS.exists():
        return DEV_PROMPTS.read_text().splitlines()[:LINES]
    return FALLBACK_PROMPTS[:LINES]


def _midi_bytes() -> bytes:
    song = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=90, time=0),
                            mido.Message("note_off", note=60, time=480)])
    song.tracks.append(track)
    buffer = io.BytesIO()
    song.save(file=buffer)
    return buffer.getvalue()


def _write_small_clip(folder: Path) -> None:
    tone = (0.1 * np.sin(np.linspace(0, 200, 4800))).astype(np.float32)[:, None].repeat(2, axis=1)
    write_clip(folder, {"parts": [{"name": "bass"}, {"name": "lead pad"}]}, _midi_bytes(), 48000,
               {"bass": tone, "lead pad": tone}, tone)


def test_a_written_clip_is_whole_and_damage_is_seen(tmp_path: Path) -> None:
    _write_small_clip(tmp_path / "a")
    assert unwhole_reason(tmp_path / "a") is None
    stem = tmp_path / "a" / "stems" / "lead_pad.wav"
    stem.write_bytes(stem.read_bytes()[:-3000])  # cut short: the header promises more frames
    assert unwhole_reason(tmp_path / "a") is not None
    _write_small_clip(tmp_path / "b")
    (tmp_path / "b" / "mix.wav").unlink()
    assert "mix.wav" in unwhole_reason(tmp_path / "b")
    _write_small_clip(tmp_path / "c")
    (tmp_path / "c" / "clip.mid").unlink()
    assert unwhole_reason(tmp_path / "c") == "unfinished (no clip.mid)"
    assert unwhole_reason(tmp_path / "never") == "unfinished (no clip.mid)"


def test_bad_lines_are_named_and_the_rest_stand(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join([
        '{"prompt": "a waltz", "id": "waltz", "tempo": 90, "key": "D minor", "meter": "3/4", "bars": 4, "seed": 1}',
        "not json",
        '{"tempo": 90}',
        '{"prompt": "x", "seed": 1.5}',
        '{"prompt": "x", "mood": "sad"}',
        '{"prompt": "a march", "id": "waltz"}',
        "",
        '{"prompt": "a reel", "expect": {"bars": 8}}',
    ]))
    items = read_prompts(path, bars=2)
    assert [item.line for item in items] == [1, 2, 3, 4, 5, 6, 8]
    assert items[0].name == "waltz" and items[0].error is None
    assert items[0].overrides == {"tempo_bpm": 90.0, "key": "D minor", "meter": "3/4", "bars": 2, "seed": 1}
    assert items[1].error.startswith("line 2: not JSON")
    assert items[2].error == "line 3: field 'prompt' must be a non-empty string"
    assert items[3].error == "line 4: field 'seed' must be an integer, got 1.5"
    assert items[4].error.startswith("line 5: unknown field 'mood' (accepted: prompt, id,")
    assert items[5].error == "line 6: field 'id' names folder 'waltz', already used by line 1"
    assert items[6].name == "0008" and items[6].error is None


def _whole(out: Path) -> set[str]:
    return {folder.name for folder in out.iterdir() if folder.is_dir() and unwhole_reason(folder) is None}


def _start_batch(prompts: Path, out: Path, target: str, concurrency: int = 2) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bridge.cli", "batch", str(prompts), "--out", str(out),
                             "--engine", target, "--concurrency", str(concurrency), "--bars", "2",
                             "--sample-rate", "22050"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop_when(process: subprocess.Popen, out: Path, whole: int, sig: int) -> str:
    """Send ``sig`` once ``whole`` clip folders are whole; the run's stderr."""
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if out.exists() and len(_whole(out)) >= whole:
            process.send_signal(sig)
            break
        time.sleep(0.05)
    return process.communicate(timeout=120)[1]


def test_batch_over_two_replicas_interrupted_and_resumed(tmp_path: Path) -> None:
    lines = _dev_prompts()
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join([*lines, BAD_LINE]) + "\n")
    names = {f"{n:04d}" for n in range(1, len(lines) + 1)}
    out = tmp_path / "out"
    replicas = start_replicas(2)
    try:
        target = ipv4_target(replicas)
        # Ctrl-C part-way: running clips finish, the rest are marked interrupted, the summary is written.
        first = _start_batch(prompts, out, target)
        stderr = _stop_when(first, out, 1, signal.SIGINT)
        assert first.returncode == 130, stderr
        summary = json.loads((out / "summary.json").read_text())
        assert summary["interrupted"] is True
        statuses = {clip["name"]: clip["status"] for clip in summary["clips"]}
        assert "interrupted" in statuses.values()
        assert {n for n, s in statuses.items() if s == "done"} == _whole(out)
        # SIGKILL part-way: no summary update, maybe half-written folders. One clip at a time, so the
        # kill after one more whole folder leaves work to do however many the first run finished.
        second = _start_batch(prompts, out, target, concurrency=1)
        before = len(_whole(out))
        _stop_when(second, out, before + 1, signal.SIGKILL)
        assert second.returncode == -signal.SIGKILL
        whole_before_last = _whole(out)
        assert whole_before_last < names  # something is left to do
        # A damaged folder among the whole ones is made again.
        broken = sorted(whole_before_last)[0]
        mix = out / broken / "mix.wav"
        mix.write_bytes(mix.read_bytes()[:len(mix.read_bytes()) // 2])
        third = _start_batch(prompts, out, target)
        _, stderr = third.communicate(timeout=300)
    finally:
        for replica in replicas:
            replica.close()
    assert third.returncode == 1, stderr  # the bad line fails; every other line is whole
    bad = len(lines) + 1
    assert f"line {bad}: field 'bars' must be an integer, got 'eight'" in stderr
    assert _whole(out) == names
    assert {p.name for p in out.iterdir()} == names | {"summary.json"}  # one folder per line, no strays
    summary = json.loads((out / "summary.json").read_text())
    statuses = {clip["name"]: clip["status"] for clip in summary["clips"]}
    assert statuses == {**{n: "skipped" for n in whole_before_last - {broken}},
                        **{n: "done" for n in names - whole_before_last | {broken}},
                        f"{bad:04d}": "failed"}
    totals = summary["totals"]
    assert (totals["lines"], totals["failed"], totals["interrupted"]) == (bad, 1, 0)
    assert totals["done"] + totals["skipped"] == len(names)
    for clip in summary["clips"]:
        assert clip["seconds"] >= 0 and clip["queue_wait_seconds"] >= 0
    for name in names:  # each folder holds its own line's clip, read back independently
        folder = out / name
        expect = json.loads(lines[int(name) - 1]).get("expect", {})
        spec = json.loads((folder / "spec.json").read_text())
        assert spec["bars"] == 2
        if "tempo_bpm" in expect:
            assert spec["tempo_bpm"] == pytest.approx(expect["tempo_bpm"])
        assert len(mido.MidiFile(folder / "clip.mid").tracks) >= 1
        frames = soundfile.info(folder / "mix.wav").frames
        assert frames > 0 and soundfile.read(folder / "mix.wav")[0].shape[0] == frames
        assert not [p for p in folder.rglob("*") if p.name.startswith(".")]  # no temp files left


def test_batch_without_engine_starts_its_own(tmp_path: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "a short lullaby on a music box", "id": "lullaby", "seed": 3}\n')
    done = run_cli("batch", str(prompts), "--out", str(tmp_path / "out"), "--bars", "1", "--sample-rate", "22050",
                   "--quiet", timeout=180)
    assert done.returncode == 0, done.stderr
    assert unwhole_reason(tmp_path / "out" / "lullaby") is None
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["engine"] == "local" and summary["clips"][0]["status"] == "done"
    assert summary["clips"][0]["seed"] == 3
