"""LiveSession driven by a synthetic clock in 256-frame windows: what goes out, and when."""
from __future__ import annotations

import pytest
from symusic import Note, Score, Track

from bridge.capture import Capture
from bridge.clock import ClockFollower
from bridge.live import ArmCapture, LiveSession, QueueClip, StopClips, clip_events
from engine.music.theory import Meter

RATE = 48000
PERIOD = 256


def run(session: LiveSession, bpm: float, until_tick: int, *, start_frame: int = 10_000,
        script: dict[int, bytes] | None = None, stop_after: int | None = None,
        skipped: tuple[int, ...] = ()) -> list[tuple[int, bytes]]:
    """Feed Start then ticks (frames rounded as jack_midi_clock does) in JACK-sized windows; the
    windows starting at a frame in ``skipped`` are never processed (asynchronous JACK skipping a
    late client: their input is lost).

    Returns what the session sent, as (frame, bytes)."""
    per_tick = RATE * 60.0 / (24 * bpm)
    inputs = [(start_frame, b"\xfa"), (start_frame, b"\xf8")]
    inputs += [(start_frame + round(k * per_tick), b"\xf8") for k in range(1, until_tick + 1)]
    if stop_after is not None:
        inputs = inputs[: stop_after + 2] + [(inputs[stop_after + 1][0] + 100, b"\xfc")]
    for frame, data in (script or {}).items():
        inputs.append((frame, data))
    inputs.sort(key=lambda e: e[0])
    out = []
    first = start_frame - start_frame % PERIOD
    end = inputs[-1][0] + RATE
    i = 0
    while first < end:
        window = []
        while i < len(inputs) and inputs[i][0] < first + PERIOD:
            window.append((inputs[i][0] / RATE, inputs[i][1]))
            i += 1
        if first in skipped:
            first += PERIOD
            continue
        for when, data in session.process(window, first / RATE, (first + PERIOD) / RATE):
            frame = round(when * RATE)
            assert first <= frame < first + PERIOD
            out.append((frame, data))
        first += PERIOD
    return out


def clip() -> Score:
    score = Score(480)
    track = Track("keys", 0, False)
    track.notes.extend([Note(0, 240, 60, 90), Note(240, 240, 62, 90), Note(240, 240, 60, 90),  # repeat of 60
                        Note(480 + 48, 100, 64, 90),  # 2.4 ticks off the grid
                        Note(960, 960, 67, 90)])
    score.tracks.append(track)
    return score


def test_notes_go_out_on_their_ticks_from_the_next_bar():
    session = LiveSession(Meter(4, 4))
    session.request(QueueClip(clip()))  # stopped at 1:1: the next bar line is bar 1
    out = run(session, 120.0, 96 * 2)
    per_tick = 1000  # frames at 120 BPM
    ons = sorted((f, d[1]) for f, d in out if d[0] == 0x90)
    assert ons == [(10_000, 60), (10_000 + 12 * per_tick, 60), (10_000 + 12 * per_tick, 62),

                   (10_000 + round(26.4 * per_tick), 64), (10_000 + 48 * per_tick, 67)]
    offs = [(f, d[1]) for f, d in out if d[0] == 0x80]
    assert len(offs) == 5  # every note ended, the repeated 60 too
    assert (10_000 + 12 * per_tick, 60) in offs
    assert out[0][1][0] == 0xC0  # program change first


def test_a_note_whose_tick_was_lost_goes_out_at_the_start_of_the_period_of_the_next_tick():
    session = LiveSession(Meter(4, 4))
    session.request(QueueClip(clip(), bar=2))  # its first note at tick 96: frame 106_000 at 120 BPM
    lost = 106_000 - 106_000 % PERIOD  # the period holding tick 96 never runs for us
    out = run(session, 120.0, 96 * 2, skipped=(lost,))
    first_on = min(f for f, d in out if d[0] == 0x90)
    # Nothing plays past the last tick received (no runaway), so not in the period right after the
    # lost one; but as early as the period of tick 97 (frame 107_000) allows, not at tick 97 itself.
    assert first_on == 107_000 - 107_000 % PERIOD


def test_every_note_of_a_dense_clip_ends():
    score = Score(480)
    track = Track("keys", 0, False)
    track.notes.extend(Note(i * 60, 30, 84, 60) for i in range(32))  # 32nds, 1.5 clock ticks long
    score.tracks.append(track)
    session = LiveSession(Meter(4, 4))
    session.request(QueueClip(score))
    out = run(session, 137.5, 96 * 2)
    assert sum(1 for _, d in out if d[0] == 0x90) == 32
    assert sum(1 for _, d in out if d[0] == 0x80) == 32


def test_queue_while_running_lands_on_the_next_bar():
    session = LiveSession(Meter(3, 4))
    out = run(session, 120.0, 24 * 3 * 3, script={10_000 + 5_500: b""})
    assert not [d for _, d in out]
    session = LiveSession(Meter(3, 4))
    follower = session.follower
    follower.feed(0.0, b"\xfa")
    for k in range(10):
        follower.feed(k * 0.02, b"\xf8")
    session.request(QueueClip(clip()))
    session.process([], 0.2, 0.21)
    assert session.placed.start == 72  # bar 2 of 3/4


def test_stop_releases_everything_and_nothing_plays_after():
    session = LiveSession(Meter(4, 4))
    session.request(QueueClip(clip()))
    out = run(session, 120.0, 96 * 2, stop_after=50)  # 67 sounds from tick 48
    stop_frame = 10_000 + 50_000 + 100
    after = [(f, d) for f, d in out if f >= stop_frame]
    assert [(d[0], d[1]) for _, d in after] == [(0x80, 67)]


def test_stop_clips_request_releases_notes():
    session = LiveSession(Meter(4, 4))
    session.request(QueueClip(clip()))
    follower = session.follower
    session.process([(0.0, b"\xfa"), (0.0, b"\xf8")], 0.0, 0.005)
    assert session.player.sounding == {(0, 60)}
    session.request(StopClips())
    out = session.process([], 0.005, 0.01)
    assert [d for _, d in out] == [bytes([0x80, 60, 0])]
    assert session.player.pending() == 0
    assert follower.position == 0


def test_clip_events_channels_and_order():
    score = clip()
    drums = Track("drums", 0, True)
    drums.notes.append(Note(0, 10, 36, 100))
    score.tracks.append(drums)
    events = clip_events(score, 96)
    assert events[0].position == 96
    assert {e.data[0] for e in events if e.data[0] & 0xF0 == 0x90} == {0x90, 0x99}


def test_capture_between_bar_lines_from_live_input():
    session = LiveSession(Meter(4, 4))
    capture = Capture()
    session.request(ArmCapture(capture, bar=2, bars=1))
    # notes at tick frames (120 BPM: 1000 frames per tick from frame 10000)
    script = {10_000 + 95_000: bytes([0x90, 50, 100]),  # before bar 2
              10_000 + 96_000: bytes([0x90, 60, 100]),  # on the bar line, same frame as the tick
              10_000 + 102_500: bytes([0x80, 60, 0]),  # 6.5 ticks later
              10_000 + 180_000: bytes([0x90, 62, 70])}  # held past the end
    run(session, 120.0, 96 * 3, script=script)
    assert capture.wait(0)
    notes = sorted((n.time, n.duration, n.pitch) for t in capture.score().tracks for n in t.notes)
    assert notes == [(0, 130, 60), (1680, 240, 62)]


def test_capture_rejects_an_empty_span():
    with pytest.raises(ValueError, match="must come after"):
        Capture().arm(96, 96, Meter(4, 4))


def test_follower_is_shared():
    follower = ClockFollower(Meter(7, 8))
    assert LiveSession(follower=follower).meter == Meter(7, 8)
