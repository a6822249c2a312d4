"""Following an Ableton Link session (`--sync link`): real Link peers in a network namespace.

Each test runs `tests/bridge/link_rig.py` inside a new network namespace (``unshare --net``; as a
normal user ``unshare -rn``), where only a loopback interface exists: the peers (LinkPython-extern,
Ableton's own Link library) and Cadenza find each other there and nowhere else. The rig prints
what it measured; the assertions are here.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bridge.link_rig import namespace_command
from tests.conftest import realtime_permitted

pytestmark = pytest.mark.jack

RIG = Path(__file__).with_name("link_rig.py")
PHASE_MS = 1.0
TEMPO_BPM = 0.05


def run_rig(*args: str) -> dict:
    pytest.importorskip("link", reason="LinkPython-extern is not installed (pip install LinkPython-extern)")
    if shutil.which("jackd") is None or shutil.which("unshare") is None:
        pytest.skip("jackd and unshare are needed (apt-get install jackd2 util-linux); .ci/run installs them")
    # jackd real-time where permitted (root, as in CI): without it, on a machine with more busy
    # processes than cores, a late period puts a note 1-2 ms off the session's beat now and then
    realtime = ["--realtime"] if shutil.which("chrt") and realtime_permitted() else []
    done = subprocess.run(namespace_command([sys.executable, str(RIG), *args, *realtime]), capture_output=True,
                          text=True, timeout=400)
    if done.returncode != 0 and "unshare" in done.stderr and "Operation not permitted" in done.stderr:
        pytest.fail(f"cannot make a network namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def link_run() -> dict:
    """One run on synchronous JACK (real-time where permitted): peers at 120 BPM, B goes to 150
    in the clip's second bar."""
    return run_rig("--tempo", "120", "--to", "150", "--bars", "4", "--change-bar", "1")


def test_the_rig_sees_only_its_own_loopback(link_run):
    assert link_run["interfaces"] == ["lo"]


def test_alone_cadenza_proposes_no_tempo_and_plays_nothing(link_run):
    alone = link_run["alone"]
    assert alone == {"ticks": 0, "transport": "stopped", "tempo_bpm": None, "lock": "unlocked", "locked_bpm": None}


def test_joining_takes_the_sessions_tempo_not_its_own(link_run):
    assert link_run["joined_tempo"] == 120.0  # Cadenza joined with 97 BPM of its own; the session kept 120


def test_tempo_change_by_a_peer_is_followed_within_a_beat(link_run):
    assert link_run["tempo_followed_after_ms"] is not None
    assert link_run["tempo_followed_after_ms"] < link_run["beat_ms_after"]
    assert not link_run["tempo_left_after_reaching"]


def test_clip_starts_on_the_next_bar_of_the_session(link_run):
    assert link_run["notes"] == link_run["notes_written"]
    assert abs(link_run["clip_start_bar_error_ms"]) < PHASE_MS


def test_every_note_is_on_the_sessions_beat_within_1_ms(link_run):
    beat = link_run["beat_ms_after"]
    pairs = zip(link_run["onset_after_change_ms"], link_run["onset_errors_ms"], strict=True)
    # the beat in which the change reaches Cadenza is not judged
    judged = [(after, error) for after, error in pairs if not 0 <= after < beat]
    assert len(judged) >= link_run["notes_written"] - 1
    assert max(abs(error) for _, error in judged) < PHASE_MS, judged


def test_cli_follows_tempo_and_phase_with_sync_link(link_run):
    beats = link_run["cli_beats"]
    assert len(beats) >= 12, link_run["cli_stderr"]
    index = [(b["bar"] - 1) * 4 + b["beat"] - 1 for b in beats]
    steps = [b - a for a, b in zip(index, index[1:], strict=False)]
    assert steps == [1] * (len(index) - 1), index  # every beat, in order
    assert all(b["lock"] == "locked" for b in beats)
    beat_ms = link_run["beat_ms_after"]
    for b in beats:
        if b["after_change_ms"] < 0:
            assert b["tempo_bpm"] == pytest.approx(120.0, abs=TEMPO_BPM)
        elif b["after_change_ms"] >= beat_ms:
            assert b["tempo_bpm"] == pytest.approx(150.0, abs=TEMPO_BPM)
        if not 0 <= b["after_change_ms"] < beat_ms:
            assert abs(b["error_ms"]) < PHASE_MS, b  # bar lines against the bar, other beats the beat


@pytest.fixture(scope="module")
def start_stop_run() -> dict:
    """Link's start/stop sync on synchronous JACK: B starts the session on a bar line, plays two
    bars and stops it a fifth of a second into the third; Cadenza has a clip queued while stopped."""
    return run_rig("--start-stop", "--tempo", "120", "--bars", "2")


def test_with_start_stop_sync_nothing_runs_while_the_session_is_stopped(start_stop_run):
    assert start_stop_run["interfaces"] == ["lo"]
    assert start_stop_run["while_stopped"] == {"transport": "stopped", "ticks": 0}  # peers there, not playing


def test_with_start_stop_sync_bar_1_is_where_a_peer_starts_the_session(start_stop_run):
    kind, position, after_ms = start_stop_run["events"][0]
    assert (kind, position) == ("start", 0)
    assert abs(after_ms) <= PHASE_MS
    assert abs(start_stop_run["first_note_after_start_ms"]) <= PHASE_MS  # the clip queued while stopped


def test_with_start_stop_sync_a_peers_stop_stops_cadenza_at_its_time(start_stop_run):
    kind, _, after_ms = start_stop_run["events"][-1]
    assert kind == "stop"
    assert abs(after_ms - (2 * start_stop_run["bar_ms"] + 200)) <= PHASE_MS
    assert start_stop_run["notes"] == 9  # two bars of quarters and the third bar's downbeat, before the stop
    assert start_stop_run["notes_after_stop"] == 0
    assert start_stop_run["stopped"]


def test_sync_rejects_an_unknown_source():
    done = subprocess.run([sys.executable, "-m", "bridge.cli", "clock", "--sync", "ableton", "--seconds", "1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--sync" in done.stderr and "'ableton'" in done.stderr and "midi-clock" in done.stderr
    assert "link" in done.stderr and "link-start-stop" in done.stderr


def test_bridge_with_sync_link_generates_at_the_sessions_tempo_and_plays_from_its_next_bar():
    run = run_rig("--bridge", "--tempo", "120")
    clip = [line for line in run["lines"] if "lands on bar" in line]
    assert clip and "at 120.00 BPM" in clip[0], run["lines"]
    assert run["notes"] > 0
    assert abs(run["first_note_bar_error_ms"]) < PHASE_MS  # on a bar line of the session
    assert 0 <= run["first_note_after_landed_ms"] < run["bar_ms"]  # the next one after the clip was ready
