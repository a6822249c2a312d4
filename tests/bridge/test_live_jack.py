"""Playing a clip against jack_midi_clock and capturing notes, on a real JACK server.

Where a note belongs comes from JACK transport (the timebase master's exact tempo and the
transport's frame), recorded by an independent client; Cadenza's output is recorded by the
same client at its frames.
"""
from __future__ import annotations

import math
import time

import pytest
from symusic import Note, Score, Track

from bridge.capture import Capture
from bridge.clock import Transport
from bridge.live import ArmCapture, LiveSession, QueueClip
from bridge.ports import JackPorts
from engine.music.midi import smf_to_score
from engine.music.theory import Meter
from tests.bridge.jack_rig import RATE, Injector, Probe, make_clip

pytestmark = pytest.mark.jack


@pytest.mark.parametrize("bpm", [120.0, 137.5])
def test_clip_plays_locked_to_the_clock(clock_rig, bpm):
    session = LiveSession(Meter(4, 4))
    ports = JackPorts(Probe(session), connect_in=[clock_rig.clock_port], connect_out=["cadenza-recorder:out"])
    clock_rig.extra.append(ports)
    score = make_clip()
    session.request(QueueClip(score, bar=2))
    master = clock_rig.master
    master.set_tempo(bpm)
    master.start_from(0)
    clock_rig.wait(lambda: session.state.position >= 4 * 96, what="bar 5")
    master.stop()
    clock_rig.wait(lambda: session.state.transport is Transport.STOPPED, what="Stop")
    time.sleep(0.05)

    # Where each note belongs: its position on the clock ticks jack_midi_clock sent, as an
    # independent client recorded them (a tick the recorder missed in an xrun is skipped).
    frames_per_tick = RATE * 60.0 / (24 * bpm)
    clock = clock_rig.recorder.events["clock"]
    start = next(i for i, (_, data) in enumerate(clock) if data == b"\xfa")
    tick_frames: dict[int, int] = {}
    index, previous = -1, None
    for frame, data in clock[start:]:
        if data == b"\xf8":
            index += 1 if previous is None else max(1, round((frame - previous) / frames_per_tick))
            tick_frames[index], previous = frame, frame
    expected = []
    for track in score.tracks:
        for note in track.notes:
            position = 96 + note.time * 24 / score.ticks_per_quarter
            whole = math.floor(position)
            if whole in tick_frames and whole + 1 in tick_frames:
                due = tick_frames[whole] + (position - whole) * (tick_frames[whole + 1] - tick_frames[whole])
                expected.append((due, note.pitch))
            else:
                expected.append((None, note.pitch))
    expected.sort(key=lambda e: (e[0] is None, e[0] or 0))
    onsets = [(frame, data[1]) for frame, data in clock_rig.recorder.events["out"]
              if data[0] & 0xF0 == 0x90 and data[2] > 0]
    notes = sum(len(t.notes) for t in score.tracks)
    assert len(onsets) == notes, f"{len(onsets)} notes played, {notes} in the clip"
    errors_ms = []
    remaining = sorted(onsets)
    for due, pitch in expected:
        if due is None:
            continue
        frame = min((f for f, p in remaining if p == pitch), key=lambda f: abs(f - due))
        remaining.remove((frame, pitch))
        errors_ms.append((frame - due) / RATE * 1000)
    assert len(errors_ms) >= notes * 0.9, "the recorder missed too many clock ticks to judge"
    mean = sum(errors_ms) / len(errors_ms)
    rms = math.sqrt(sum(e * e for e in errors_ms) / len(errors_ms))
    worst = max(abs(e) for e in errors_ms)
    print(f"{bpm} BPM: {len(errors_ms)} onsets, phase error mean {mean:+.4f} ms, RMS {rms:.4f} ms, "
          f"worst {worst:.4f} ms (xruns {ports.xruns}, ticks inferred lost {session.follower.missed})")
    assert rms <= 1.0
    offs = [data for _, data in clock_rig.recorder.events["out"] if data[0] & 0xF0 == 0x80]
    assert len(offs) == len(expected)  # every note released
    assert not ports.errors


def test_stop_releases_sounding_notes(clock_rig):
    session = LiveSession(Meter(4, 4))
    ports = JackPorts(Probe(session), connect_in=[clock_rig.clock_port], connect_out=["cadenza-recorder:out"])
    clock_rig.extra.append(ports)
    score = Score(480)
    track = Track("pad", 0, False)
    track.notes.extend([Note(0, 480 * 8, 60, 90), Note(0, 480 * 8, 64, 90)])  # two bars long
    score.tracks.append(track)
    session.request(QueueClip(score, bar=1))
    clock_rig.master.set_tempo(120.0)
    clock_rig.master.start_from(0)
    clock_rig.wait(lambda: session.state.position >= 30, what="beat 2")
    clock_rig.master.stop()
    clock_rig.wait(lambda: session.state.transport is Transport.STOPPED, what="Stop")
    time.sleep(0.05)
    out = [data for _, data in clock_rig.recorder.events["out"] if data[0] & 0xE0 == 0x80]
    assert [d[0] & 0xF0 for d in out] == [0x90, 0x90, 0x80, 0x80]
    assert sorted(d[1] for d in out[2:]) == [60, 64]


def test_capture_notes_between_two_bar_lines(clock_rig):
    # A "DAW" that plays notes at given clock positions, counting jack_midi_clock's ticks itself.
    plan = {  # clock position -> messages
        90: [bytes([0x90, 40, 100])],  # bar 1: before the capture
        96: [bytes([0x80, 40, 0]), bytes([0x90, 60, 100])],  # the bar line
        108: [bytes([0x80, 60, 0]), bytes([0x91, 64, 90])],
        130: [bytes([0x81, 64, 0])],
        150: [bytes([0x90, 67, 80])],  # held over the end of bar 2
        192: [bytes([0x90, 72, 80])],  # bar 3: after the capture
        200: [bytes([0x80, 67, 0]), bytes([0x80, 72, 0])],
    }
    count = {"next": None}

    def daw(first, frames, incoming):
        out = []
        for offset, data in incoming:
            if data == b"\xfa":
                count["next"] = 0
            elif data == b"\xf8" and count["next"] is not None:
                out.extend((offset, message) for message in plan.get(count["next"], []))
                count["next"] += 1
        return out

    sender = Injector("cadenza-daw", daw)
    clock_rig.extra.append(sender)
    clock_rig.connect(clock_rig.clock_port, "cadenza-daw:in")
    session = LiveSession(Meter(4, 4))
    ports = JackPorts(Probe(session), connect_in=[clock_rig.clock_port, "cadenza-daw:out"])
    clock_rig.extra.append(ports)
    capture = Capture()
    session.request(ArmCapture(capture, bar=2, bars=1))
    clock_rig.master.set_tempo(120.0)
    clock_rig.master.start_from(0)
    assert capture.wait(timeout=15), "the capture did not finish"
    clock_rig.master.stop()
    score = smf_to_score(capture.smf())  # read back from the SMF bytes
    notes = sorted((n.time, n.duration, n.pitch, n.velocity) for t in score.tracks for n in t.notes)
    assert notes == [(0, 240, 60, 100), (240, 440, 64, 90), (1080, 840, 67, 80)]
    assert [(t.time_signatures if False else None) for t in score.tracks] == [None, None]
    assert score.time_signatures[0].numerator == 4
