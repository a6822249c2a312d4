"""`cadenza clock` and `cadenza bridge` as a user runs them, against jack_midi_clock on JACK."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.jack


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bridge.cli", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)


def connected(rig, port: str) -> bool:
    return any(p.name == port for p in rig.recorder.client.get_all_connections(rig.clock_port))


def run_clock_cli(rig, bpm: float, *args: str) -> str:
    """`cadenza clock --json ARGS` on the rig's clock port, rolled from bar 1 at ``bpm``; its stdout."""
    cli = spawn("clock", "--json", *args, "--in", rig.clock_port)
    try:
        rig.wait(lambda: connected(rig, "Cadenza:Cadenza In") or cli.poll() is not None, 20, "the CLI's port")
        assert cli.poll() is None, cli.stderr.read()
        rig.master.set_tempo(bpm)
        rig.master.start_from(0)
        out, _ = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
    return out


def test_clock_prints_one_json_line_per_beat(clock_rig):
    out = run_clock_cli(clock_rig, 137.5, "--beats", "6")
    lines = [json.loads(line) for line in out.splitlines()]
    beats = [line for line in lines if line["event"] == "tick"]
    assert [(b["bar"], b["beat"], b["tick"]) for b in beats] == [(1, 1, 0), (1, 2, 0), (1, 3, 0), (1, 4, 0),
                                                                (2, 1, 0), (2, 2, 0)]
    # jack_midi_clock sends a Song Position Pointer when the transport locates, before its Start
    assert [line["event"] for line in lines if line["event"] != "position"][0] == "start"
    assert all(b["transport"] == "running" for b in beats)
    for beat in beats[2:]:  # two beats after Start on
        assert beat["tempo_bpm"] == pytest.approx(137.5, abs=0.05)


def test_clock_rejects_a_bad_meter(clock_rig):
    cli = spawn("clock", "--meter", "4/5", "--seconds", "1")
    out, err = cli.communicate(timeout=30)
    assert cli.returncode == 2
    assert "--meter" in err and "4/5" in err and "accepted" in err


def test_clock_names_the_ports_it_could_not_find(clock_rig):
    cli = spawn("clock", "--in", "no such port", "--seconds", "1")
    out, err = cli.communicate(timeout=30)
    assert cli.returncode == 1
    assert "no JACK MIDI output named 'no such port'" in err and "mclk_out" in err


class Lines:
    """Reads a process's stdout in a thread, so a test can wait for a line."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            time.sleep(0.02)
        raise AssertionError(f"no line with {text!r} within {timeout:g} s; got {self.lines}")


def test_bridge_generates_a_clip_that_lands_on_the_next_bar(clock_rig):
    rig = clock_rig
    # A session of its own: the bridge's verdicts are recorded, and the default session (the folder's
    # name) is the one other tests generate in, where verdicts would make generate rank candidates.
    cli = spawn("bridge", "--in", rig.clock_port, "--out", "cadenza-recorder:out", "--session",
                f"live-{time.monotonic_ns()}")
    lines = Lines(cli.stdout)
    try:
        lines.wait_for("bridge: clock in", 120)
        rig.master.set_tempo(120.0)
        rig.master.start_from(0)
        rig.wait(lambda: len(rig.clock_ticks_after(0)) > 2 * 96, what="two bars of clock")
        cli.stdin.write("g 2 bars of pop with drums and bass, A minor\n")
        cli.stdin.flush()
        landed = lines.wait_for("lands on bar", 120)
        bar = int(landed.rsplit(" ", 1)[1])
        ticks = rig.clock_ticks_after(0)
        rig.wait(lambda: len(rig.clock_ticks_after(0)) > (bar + 1) * 96, timeout=60, what="the clip's bar")
        ticks = rig.clock_ticks_after(0)  # sync-mode JACK: no tick is lost, so index = position
        notes = [(frame, data) for frame, data in rig.recorder.events["out"] if data[0] & 0xF0 == 0x90]
        assert notes, "no notes came out"
        assert notes[0][0] == ticks[(bar - 1) * 96], "the first note is not on the bar line's tick"
        cli.stdin.write("v\nr\nq\n")
        cli.stdin.flush()
        assert cli.wait(timeout=60) == 0
    finally:
        if cli.poll() is None:
            cli.kill()
    assert any("clip 2 (take" in line and "a variation of" in line for line in lines.lines)
    assert any("clip 2 (take" in line and "rejected in session" in line for line in lines.lines)
    sounding = set()
    for _, data in rig.recorder.events["out"]:
        if data[0] & 0xF0 == 0x90 and data[2] > 0:
            sounding.add((data[0] & 0x0F, data[1]))
        elif data[0] & 0xF0 == 0x80:
            sounding.discard((data[0] & 0x0F, data[1]))
    assert not sounding  # rejected and quit: nothing left sounding


def test_clock_over_rtmidi_on_jack_counts_the_same_bars(clock_rig):
    # python-rtmidi's own libjack cannot share a process with JACK-Client's, so this runs the
    # CLI in its own process. Its stamps are callback times: positions are exact, tempo is not
    # (bench_clock.py prints how far off); the tempo tolerance is for --midi-api jack.
    out = run_clock_cli(clock_rig, 120.0, "--beats", "9", "--midi-api", "jack-rtmidi")
    beats = [line for line in map(json.loads, out.splitlines()) if line["event"] == "tick"]
    assert [(b["bar"], b["beat"]) for b in beats] == [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2), (2, 3),
                                                     (2, 4), (3, 1)]
    print(f"rtmidi on JACK: tempo at 3:1 {beats[-1]['tempo_bpm']} BPM (set 120)")
    assert beats[-1]["tempo_bpm"] == pytest.approx(120.0, abs=5.0)  # sanity only; see bench_clock.py
