"""Following Debian's jack_midi_clock on a real JACK server (dummy backend).

The tempo and positions come from a JACK timebase master in the fixture, so every expected
number is set by the test, not read back from the code under test.
"""
from __future__ import annotations

import random
import time

import pytest

from bridge.clock import ClockFollower, Kind, Transport, bar_beat
from bridge.live import LiveSession, QueueClip
from bridge.ports import JackPorts
from engine.music.theory import Meter
from tests.bridge.jack_rig import RATE, Injector, Probe

pytestmark = pytest.mark.jack


def follow(rig, session=None):
    """Cadenza's ports driven by a LiveSession behind a Probe, fed by jack_midi_clock."""
    session = session or LiveSession(Meter(4, 4))
    probe = Probe(session)
    ports = JackPorts(probe, connect_in=[rig.clock_port], connect_out=["cadenza-recorder:out"])
    rig.extra.append(ports)
    return session, probe, ports


@pytest.mark.parametrize("bpm", [90.0, 120.0, 137.5, 174.0])
def test_tempo_within_0_05_bpm_two_beats_after_start(clock_rig, bpm):
    session, probe, ports = follow(clock_rig)
    clock_rig.master.set_tempo(bpm)
    clock_rig.master.start_from(0)
    clock_rig.wait(lambda: 48 in probe.seen, what="two beats of clock")
    state = probe.seen[48]  # the downbeat of beat 3: two beats after Start
    print(f"{bpm} BPM: estimate {state.tempo_bpm:.4f} BPM two beats after Start "
          f"(ticks inferred lost {session.follower.missed}, xruns {ports.xruns})")
    assert state.tempo_bpm == pytest.approx(bpm, abs=0.05)
    assert str(state.bar_beat) == "1:3:00"
    assert not ports.errors


def test_tempo_change_120_to_150_tracked_within_one_bar(clock_rig):
    session, probe, ports = follow(clock_rig)
    master = clock_rig.master
    master.set_tempo(120.0)
    # At 120 BPM a tick is 1000 frames; beat 8 (tick 192) is frame 192000, a period boundary.
    # The change takes effect with the next period, so jack_midi_clock drops no tick at it.
    master.change_tempo_at(192000 + 256, 150.0)
    master.start_from(0)
    clock_rig.wait(lambda: 192 + 96 in probe.seen, what="a bar after the tempo change")
    before, after = probe.seen[191], probe.seen[192 + 96]
    off = [p for p in range(192, 192 + 97) if p in probe.seen and abs(probe.seen[p].tempo_bpm - 150.0) > 0.05]
    print(f"within 0.05 BPM of 150 for good {max(off) - 192 + 1 if off else 0} ticks after the change")
    print(f"before the change {before.tempo_bpm:.4f} BPM, one bar after {after.tempo_bpm:.4f} BPM "
          f"(ticks inferred lost {session.follower.missed}, xruns {ports.xruns})")
    assert before.tempo_bpm == pytest.approx(120.0, abs=0.05)
    assert after.tempo_bpm == pytest.approx(150.0, abs=0.05)
    assert str(after.bar_beat) == "4:1:00"


def kinds_since(session, index):
    return [(e.kind, e.position) for e in list(session.clock_events)[index:] if e.kind is not Kind.TICK]


def test_start_stop_relocate_continue_give_the_right_bar_beat(clock_rig):
    session, probe, ports = follow(clock_rig)
    master = clock_rig.master
    master.set_tempo(120.0)
    master.start_from(0)
    clock_rig.wait(lambda: session.state.position >= 100, what="bar 2")
    master.stop()
    clock_rig.wait(lambda: session.state.transport is Transport.STOPPED, what="Stop")
    time.sleep(0.1)
    stopped_frame = master.client.transport_frame
    sixteenths = int(master.beats_at(stopped_frame) * 4)  # jack_midi_clock's SPP: floor to a sixteenth
    assert session.state.position == sixteenths * 6
    assert session.state.bar_beat == bar_beat(sixteenths * 6, Meter(4, 4))

    # Relocate while stopped to bar 5, then roll: Continue, SPP, first tick on 5:1:00.
    mark = len(session.clock_events)
    master.locate(master.frame_of_bar(5))
    time.sleep(0.1)
    master.start()
    clock_rig.wait(lambda: session.state.transport is Transport.RUNNING and session.state.position >= 4 * 96 + 24,
                   what="rolling from bar 5")
    ticks = [e for e in list(session.clock_events)[mark:] if e.kind is Kind.TICK]
    assert str(bar_beat(ticks[0].position, Meter(4, 4))) == "5:1:00"
    print("relocate while stopped:", kinds_since(session, mark))

    # Relocate while rolling to bar 9: Stop, SPP, Continue; the first tick after it is 9:1:00.
    mark = len(session.clock_events)
    master.locate(master.frame_of_bar(9))
    clock_rig.wait(lambda: any(e.kind is Kind.TICK and e.position >= 8 * 96 + 24
                               for e in list(session.clock_events)[mark:]), what="rolling from bar 9")
    events = list(session.clock_events)[mark:]
    print("relocate while rolling:", kinds_since(session, mark))
    after_move = [e for e in events if e.kind is Kind.TICK and e.position >= 8 * 96]
    assert str(bar_beat(after_move[0].position, Meter(4, 4))) == "9:1:00"
    assert {Kind.POSITION} <= {e.kind for e in events}
    master.stop()
    clock_rig.wait(lambda: session.state.transport is Transport.STOPPED, what="Stop")
    assert not ports.errors


def test_garbage_between_clock_bytes_changes_nothing(clock_rig):
    rng = random.Random(11)
    sysex = bytes([0xF0]) + bytes(rng.randrange(0x80) for _ in range(6000)) + bytes([0xF7])
    fixed = [bytes([0x90, 0x40]), bytes([0xF2, 0x10]), bytes([0x10, 0x20, 0x30]), sysex,
             bytes([0xF2, 0x10, 0x20, 0x30]), bytes([0xF2, 0x90, 0x00]), bytes([0xF0, 0x7E, 0x01])]

    def garbage(first, frames, incoming):
        out = []
        for _ in range(rng.randrange(3)):
            if rng.random() < 0.5:
                data = rng.choice(fixed)
            else:  # random bytes below F8 (F8-FF are real-time messages by definition, not garbage)
                data = bytes(rng.randrange(0xF8) for _ in range(rng.randrange(1, 12)))
                if len(data) == 3 and data[0] == 0xF2 and data[1] < 0x80 and data[2] < 0x80:
                    continue  # a valid Song Position Pointer
            out.append((rng.randrange(frames), data))
        return out

    injector = Injector("cadenza-garbage", garbage)
    clock_rig.extra.append(injector)
    session, probe, ports = follow(clock_rig)
    ports.client.connect("cadenza-garbage:out", ports.in_name)
    master = clock_rig.master
    master.set_tempo(120.0)
    master.start_from(0)
    clock_rig.wait(lambda: session.state.position >= 3 * 96, what="three bars")
    master.locate(master.frame_of_bar(9))
    clock_rig.wait(lambda: session.state.position >= 9 * 96, what="bar 10")
    master.stop()
    clock_rig.wait(lambda: session.state.transport is Transport.STOPPED, what="Stop")
    time.sleep(0.1)
    ports.close()

    clean = ClockFollower(Meter(4, 4))  # the same clock, without the garbage
    for frame, data in clock_rig.recorder.events["clock"]:
        clean.feed(frame / RATE, data)
    dirty = session.follower
    print(f"garbage events written {injector.written} (refused by JACK {injector.failed}), "
          f"ignored by the follower {dirty.ignored}")
    assert dirty.ignored > 100
    # ticks that took a position (asynchronous JACK may hand a late client a buffer twice)
    assert dirty.ticks - dirty.duplicates - dirty.stale == clean.ticks - clean.duplicates - clean.stale
    assert dirty.state() == clean.state()
    assert not ports.errors


def test_clock_loss_detected_within_300_ms_and_playback_stops(clock_rig):
    from symusic import Note, Score, Track

    session, probe, ports = follow(clock_rig)
    score = Score(480)
    track = Track("pad", 0, False)
    for i in range(64):  # eighth notes, 8 bars
        track.notes.append(Note(i * 240, 200, 60 + i % 12, 90))
    score.tracks.append(track)
    session.request(QueueClip(score, bar=1))
    master = clock_rig.master
    master.set_tempo(120.0)
    master.start_from(0)
    clock_rig.wait(lambda: session.state.position >= 150, what="bar 2")
    ports.client.disconnect(clock_rig.clock_port, ports.in_name)  # the cable is pulled: ticks stop, no Stop
    clock_rig.wait(lambda: session.state.transport is Transport.LOST, timeout=5, what="clock loss")
    time.sleep(0.5)
    events = list(session.clock_events)
    lost = next(e for e in events if e.kind is Kind.LOST)
    last_tick = max(e.time for e in events if e.kind is Kind.TICK)
    print(f"clock lost noticed {1000 * (lost.time - last_tick):.1f} ms after the last tick")
    assert lost.time - last_tick <= 0.3
    out = clock_rig.recorder.events["out"]
    lost_frame = round(lost.time * RATE)
    assert not [e for e in out if e[0] > lost_frame and e[1][0] & 0xF0 == 0x90]  # no runaway playback
    sounding = set()
    for _, data in out:
        if data[0] & 0xF0 == 0x90 and data[2] > 0:
            sounding.add((data[0] & 0x0F, data[1]))
        elif data[0] & 0xF0 == 0x80:
            sounding.discard((data[0] & 0x0F, data[1]))
    assert not sounding  # no stuck notes

    # The cable is back and the DAW relocates (Stop, SPP, Continue): the follower runs again.
    ports.client.connect(clock_rig.clock_port, ports.in_name)
    master.locate(master.frame_of_bar(5))
    clock_rig.wait(lambda: session.state.transport is Transport.RUNNING and session.state.position >= 4 * 96 + 24,
                   what="recovery on the relocate")
    assert str(session.state.bar_beat).startswith("5:")
    assert not ports.errors
