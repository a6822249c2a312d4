"""The jam's pure core: phrase plan, lead, verdict gestures and on-time queueing against a synthetic clock.

The clock is Start then 24-PPQN ticks at exact frames, fed in 256-frame windows as JACK would;
a phrase is requested at a chosen frame, as the jam thread would when the engine answers.
"""
from __future__ import annotations

import pytest
from symusic import Note, Score, Track

from bridge.capture import Capture
from bridge.jam import JamLive, Late, LeadEstimator, PhrasePlan, Pressed, Queued, QueuePhrase, Trigger, parse_trigger
from bridge.live import ArmCapture, LiveSession
from engine.music.theory import Meter

RATE = 48000
PERIOD = 256
START = 10_000  # frame of Start and of tick 0
PER_TICK = 1000  # frames per clock tick at 120 BPM


class Clock:
    """Start + ticks at 120 BPM from frame START, plus scripted messages, fed window by window."""

    def __init__(self, live: JamLive, ticks: int, script: list[tuple[int, bytes]] = ()) -> None:
        self.live = live
        events = [(START, b"\xfa")] + [(START + k * PER_TICK, b"\xf8") for k in range(ticks + 1)] + list(script)
        self.events = sorted(events, key=lambda e: e[0])
        self.first = START - START % PERIOD
        self.i = 0
        self.out: list[tuple[int, bytes]] = []

    def until(self, frame: int) -> None:
        """Run the windows that start before ``frame``."""
        while self.first < frame:
            window = []
            while self.i < len(self.events) and self.events[self.i][0] < self.first + PERIOD:
                window.append((self.events[self.i][0] / RATE, self.events[self.i][1]))
                self.i += 1
            for when, data in self.live.process(window, self.first / RATE, (self.first + PERIOD) / RATE):
                self.out.append((round(when * RATE), data))
            self.first += PERIOD

    def frame_of(self, position: float) -> int:
        return START + round(position * PER_TICK)


def phrase(pitch: int) -> Score:
    """One bar: a note on each beat."""
    score = Score(480)
    track = Track("keys", 0, False)
    track.notes.extend(Note(beat * 480, 240, pitch, 90) for beat in range(4))
    score.tracks.append(track)
    return score


def outcomes(live: JamLive) -> list:
    found = []
    while not live.outcomes.empty():
        found.append(live.outcomes.get())
    return found


def test_phrase_plan_places_phrases_and_cuts_on_the_clock():
    plan = PhrasePlan(Meter(4, 4), 4, first=96 * 2)  # phrases of 4 bars from bar 3
    assert plan.phrase_ticks == 384
    assert [plan.start(k) for k in range(3)] == [192, 576, 960]
    assert [plan.bar(k) for k in range(3)] == [3, 7, 11]
    assert plan.phrase_at(191) is None and plan.phrase_at(192) == 0 and plan.phrase_at(575.9) == 0
    assert plan.phrase_at(576) == 1
    assert plan.cut(0, 24) == 576 - 24  # one beat before phrase 1
    assert plan.cut(0, 10_000) == 193  # never before phrase 0's first tick
    waltz = PhrasePlan(Meter(3, 4), 2, first=0)
    assert waltz.phrase_ticks == 144 and waltz.bar(1) == 3
    with pytest.raises(ValueError, match="bar line"):
        PhrasePlan(Meter(4, 4), 4, first=95)
    with pytest.raises(ValueError, match="1-64 bars"):
        PhrasePlan(Meter(4, 4), 0, first=0)


def test_lead_follows_the_slowest_recent_answer_plus_a_beat():
    lead = LeadEstimator(margin_beats=1.0, first_latency_s=1.0, factor=1.0)
    tick = 60.0 / (24 * 120)  # 120 BPM
    assert lead.lead_ticks(tick, Meter(4, 4), 384) == 48 + 24  # 1 s = 2 beats, plus one beat
    for seconds in (0.1, 0.3, 0.2, 0.1):
        lead.add(seconds)
    assert lead.lead_ticks(tick, Meter(4, 4), 384) == 15 + 24  # 0.3 s = 14.4 ticks -> 15
    lead.add(0.1)  # the 0.3 s answer is now 4 answers old: still counted
    assert lead.latency() == 0.3
    lead.add(0.1)
    assert lead.latency() == 0.2
    lead.add(30.0)
    assert lead.lead_ticks(tick, Meter(4, 4), 96) == 96  # at most the phrase
    assert lead.lead_ticks(60.0 / (24 * 180), Meter(6, 8), 10_000) == 30 * 72 + 12  # 72 ticks/s; a beat of 6/8 = 12
    slower = LeadEstimator(first_latency_s=0.2, factor=1.5, margin_beats=1.0)
    assert slower.lead_ticks(tick, Meter(4, 4), 384) == 15 + 24  # 1.5 x 0.2 s = 0.3 s


def test_triggers_tell_verdict_gestures_from_music():
    keep = Trigger("note", 36)
    assert keep.pressed(bytes([0x99, 36, 100])) and not keep.pressed(bytes([0x90, 36, 0]))
    assert keep.owns(bytes([0x80, 36, 0])) and not keep.owns(bytes([0x90, 37, 100]))
    pedal = Trigger("cc", 64)
    assert pedal.pressed(bytes([0xB3, 64, 127])) and not pedal.pressed(bytes([0xB0, 64, 10]))
    assert pedal.owns(bytes([0xB0, 64, 0])) and not pedal.owns(bytes([0x90, 64, 100]))
    assert parse_trigger(None, 20, "keep") == Trigger("cc", 20)
    assert parse_trigger(None, None, "keep") is None
    with pytest.raises(ValueError, match="--reject-note must be 0-127, got 128"):
        parse_trigger(128, None, "reject")
    with pytest.raises(ValueError, match="not both"):
        parse_trigger(1, 2, "keep")
    with pytest.raises(ValueError):
        Trigger("pitchbend", 1)


def test_an_on_time_phrase_starts_exactly_on_its_bar_line():
    live = JamLive(LiveSession(Meter(4, 4)))
    clock = Clock(live, ticks=96 * 3)
    live.request(QueuePhrase(phrase(60), start=96, index=0))
    clock.until(clock.frame_of(95.5))  # half a tick before bar 2
    live.request(QueuePhrase(phrase(62), start=192, index=1))
    clock.until(clock.frame_of(150))  # phrase 1 is asked for in bar 2, well before bar 3
    clock.until(clock.frame_of(96 * 3 + 2))
    found = outcomes(live)
    assert [type(o) for o in found] == [Queued, Queued]
    assert found[0].headroom_ticks == 96  # queued before Start: the clock stood at 0
    assert found[1].headroom_ticks == pytest.approx(192 - 95.5, abs=0.3)
    assert found[1].headroom_s == pytest.approx((192 - 95.5) * 60 / (24 * 120), abs=0.01)
    ons = sorted((f, d[1]) for f, d in clock.out if d[0] & 0xF0 == 0x90)
    assert ons == [(clock.frame_of(96 + 24 * b), 60) for b in range(4)] + \
                  [(clock.frame_of(192 + 24 * b), 62) for b in range(4)]


def test_a_late_phrase_plays_nothing_and_says_by_how_much():
    live = JamLive(LiveSession(Meter(4, 4)))
    clock = Clock(live, ticks=96 * 3)
    live.request(QueuePhrase(phrase(60), start=96, index=0))
    clock.until(clock.frame_of(96 + 3.2))  # the bar line's tick (and three more) already came
    live.request(QueuePhrase(phrase(62), start=96, index=1))
    clock.until(clock.frame_of(96 * 3))
    queued, late = outcomes(live)
    assert isinstance(queued, Queued) and isinstance(late, Late) and late.index == 1
    assert 3.0 <= late.late_ticks <= 3.6
    assert late.late_s == pytest.approx(late.late_ticks * 60 / (24 * 120))
    pitches = {d[1] for _, d in clock.out if d[0] & 0xF0 == 0x90}
    assert pitches == {60}  # nothing of the late phrase, not even its later notes


def test_the_tick_of_the_bar_line_decides_not_the_wall_clock():
    # Queued in the window holding the bar line's tick, before the tick: still on time.
    live = JamLive(LiveSession(Meter(4, 4)))
    clock = Clock(live, ticks=200)
    line = clock.frame_of(96)
    clock.until(line - line % PERIOD)  # the window that starts just before the bar-line tick is next
    live.request(QueuePhrase(phrase(64), start=96, index=0))
    clock.until(clock.frame_of(150))
    (queued,) = outcomes(live)
    assert isinstance(queued, Queued) and 0 < queued.headroom_ticks < 1
    assert min(f for f, d in clock.out if d[0] & 0xF0 == 0x90) == line


def test_verdict_gestures_are_reported_with_their_position_and_not_captured():
    keep, reject = Trigger("note", 36), Trigger("cc", 80)
    script = [(START + 100 * PER_TICK, bytes([0x90, 72, 90])), (START + 101 * PER_TICK, bytes([0x80, 72, 0])),
              (START + 110 * PER_TICK, bytes([0x99, 36, 110])), (START + 111 * PER_TICK, bytes([0x89, 36, 0])),
              (START + 130 * PER_TICK + 500, bytes([0xB0, 80, 127])), (START + 131 * PER_TICK, bytes([0xB0, 80, 0]))]
    live = JamLive(LiveSession(Meter(4, 4)), keep, reject)
    capture = Capture()
    live.session.request(ArmCapture(capture, bar=2, bars=1))
    clock = Clock(live, ticks=96 * 2 + 4, script=script)
    clock.until(clock.frame_of(96 * 2 + 4))
    pressed = outcomes(live)
    assert [(p.verdict, round(p.position, 1)) for p in pressed] == [("keep", 110.0), ("reject", 130.5)]
    assert all(isinstance(p, Pressed) for p in pressed)
    assert capture.wait(0)
    notes = sorted((n.pitch, n.time) for t in capture.score().tracks for n in t.notes)
    assert notes == [(72, (100 - 96) * 20)]  # the music, not the gestures
