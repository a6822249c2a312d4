"""Play clips in time with an incoming MIDI clock: the scheduler behind `cadenza bridge`.

Pure code, like `bridge.clock`: `LiveSession.process(events, start, end)` takes the MIDI
events received in one time window (an audio period under JACK) and returns the MIDI events
to send in that window, each with its time. The port (see `bridge.ports`) does the I/O.

Events are scheduled against clock position, not wall time. A clip event at clock position
``p`` (24 PPQN ticks, fractional between ticks) goes out:

- when the tick at ``p`` arrives, at that tick's time, if ``p`` is a whole tick;
- between ticks, at the time the last tick and the tempo give, but never past the next tick:
  when ticks stop, playback stops with them (no runaway), and on Stop or clock loss every
  sounding note is released at once.

A new clip starts on the next bar line (or a named bar) and replaces what was queued from
there on; notes of the old clip already sounding end as written.
"""
from __future__ import annotations

import bisect
import queue
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from symusic import Score

from bridge.capture import Capture
from bridge.clock import (
    CLOCKS_PER_QUARTER,
    ClockFollower,
    ClockState,
    Kind,
    Transport,
    bar_position,
    clocks_per_bar,
    clocks_per_beat,
    without_realtime,
)
from engine.music.theory import Meter

if TYPE_CHECKING:
    from bridge.link_clock import LinkFollower

NOTE_OFF, PROGRAM, NOTE_ON = 0, 1, 2  # order of events at one position: offs first, so repeats retrigger
DRUM_CHANNEL = 9


@dataclass(frozen=True, order=True)
class ClipEvent:
    """One MIDI message of a clip at a clock position (ticks, 24 PPQN, may be fractional)."""

    position: float
    order: int
    data: bytes = field(compare=False)


def clip_events(score: Score, start: int) -> list[ClipEvent]:
    """The notes and programs of ``score`` as events from clock position ``start`` on.

    Track ``i`` plays on MIDI channel ``i`` (skipping channel 10 unless the track is drums,
    which always plays on channel 10). The clip's own tempo map is not used: the clock is.
    """
    scale = CLOCKS_PER_QUARTER / score.ticks_per_quarter
    events: list[ClipEvent] = []
    melodic = iter(c for c in range(16) if c != DRUM_CHANNEL)
    for track in score.tracks:
        channel = DRUM_CHANNEL if track.is_drum else next(melodic, None)
        if channel is None:
            raise ValueError("the clip has more than 15 melodic tracks; MIDI has 15 melodic channels")
        if not track.is_drum:
            events.append(ClipEvent(float(start), PROGRAM, bytes([0xC0 | channel, track.program & 0x7F])))
        for note in track.notes:
            on = start + note.time * scale
            off = start + (note.time + max(note.duration, 1)) * scale
            pitch, velocity = note.pitch & 0x7F, max(1, min(127, note.velocity))
            events.append(ClipEvent(on, NOTE_ON, bytes([0x90 | channel, pitch, velocity])))
            events.append(ClipEvent(off, NOTE_OFF, bytes([0x80 | channel, pitch, 0])))
    events.sort()
    return events


def clip_length(score: Score) -> float:
    """The clip's length in clock ticks (its last note's end)."""
    return score.end() * CLOCKS_PER_QUARTER / score.ticks_per_quarter


def next_bar_line(position: int, meter: Meter, *, running: bool) -> int:
    """The clock position of the next bar line: after the tick at ``position`` while running
    (that tick has sounded), at or after ``position`` when stopped (nothing has sounded yet)."""
    per_bar = clocks_per_bar(meter)
    after = position + 1 if running else position
    return -(-after // per_bar) * per_bar


class Player:
    """The queued clip events and the notes sounding; decides what is due in a window."""

    def __init__(self) -> None:
        self.events: list[ClipEvent] = []
        self.cursor = 0
        self.sounding: set[tuple[int, int]] = set()  # (channel, pitch)
        self.sent = 0

    def queue(self, events: list[ClipEvent], start: float) -> None:
        """Replace everything queued from ``start`` on with ``events`` (keeping note-offs of notes
        already started, so nothing sticks)."""
        kept = self.events[self.cursor:]
        kept = [e for e in kept if e.position < start or e.order == NOTE_OFF]
        self.events = sorted(kept + events)
        self.cursor = 0

    def seek(self, position: float) -> None:
        """Continue from ``position``: nothing before it is played (no retriggered notes)."""
        self.cursor = bisect.bisect_left(self.events, ClipEvent(position, -1, b""))

    def release_all(self, time: float) -> list[tuple[float, bytes]]:
        """Note-offs for every sounding note, at ``time``."""
        offs = [(time, bytes([0x80 | channel, pitch, 0])) for channel, pitch in sorted(self.sounding)]
        self.sounding.clear()
        return offs

    def pending(self) -> int:
        return len(self.events) - self.cursor

    def peek(self) -> ClipEvent | None:
        return self.events[self.cursor] if self.cursor < len(self.events) else None

    def take(self, until: float, inclusive: bool) -> list[ClipEvent]:
        """Pop the events at positions before ``until`` (or at it too, if ``inclusive``)."""
        taken = []
        while self.cursor < len(self.events):
            event = self.events[self.cursor]
            if event.position > until or (event.position == until and not inclusive):
                break
            taken.append(event)
            self.cursor += 1
        return taken

    def emit(self, event: ClipEvent, time: float) -> tuple[float, bytes] | None:
        """The message for ``event`` at ``time``, or None for a note-off of a note not sounding."""
        status, data = event.data[0], event.data
        key = (status & 0x0F, data[1]) if len(data) > 1 else None
        if event.order == NOTE_ON:
            self.sounding.add(key)
        elif event.order == NOTE_OFF:
            if key not in self.sounding:
                return None
            self.sounding.discard(key)
        self.sent += 1
        return time, data


@dataclass(frozen=True)
class QueueClip:
    """A request from another thread: play ``score`` from ``bar`` (None: the next bar line)."""

    score: Score
    bar: int | None = None


@dataclass(frozen=True)
class StopClips:
    """A request from another thread: drop everything queued and release sounding notes."""


@dataclass(frozen=True)
class ArmCapture:
    """A request from another thread: record the notes of ``bars`` bars from ``bar`` on
    (or up to clock position ``until``, when given: a capture may end between bar lines)."""

    capture: Capture
    bar: int | None = None
    bars: int = 1
    until: int | None = None


@dataclass(frozen=True)
class Placed:
    """Where a queued clip landed: its first and last clock positions."""

    start: int
    end: float


class LiveSession:
    """Clock follower, player and capture behind one `process()` call per time window.

    Other threads talk to it only through `request()` (a deque: appends are atomic in
    CPython, so neither side takes a lock) and read `state` (an immutable snapshot, replaced
    whole), `placed` (where the last queued clip landed) and the ``observer`` queue
    (`queue.SimpleQueue.put` never blocks).
    """

    def __init__(self, meter: Meter | None = None, follower: ClockFollower | LinkFollower | None = None,
                 observer: queue.SimpleQueue | None = None) -> None:
        self.follower = follower or ClockFollower(meter)
        self.observer = observer  # gets (ClockEvent, ClockState) for every beat and transport change
        self.meter = self.follower.meter
        self.player = Player()
        self.captures: list[tuple[Capture, int, int]] = []
        self.requests: deque[object] = deque()
        self.state: ClockState = self.follower.state()
        self.placed: Placed | None = None
        self.clock_events: deque = deque(maxlen=4096)  # the recent clock events, for inspection
        self._previous_tick = None
        self._window_start = 0.0
        self._window_end: float | None = None

    # -- from other threads --------------------------------------------------------------
    def request(self, command: QueueClip | StopClips | ArmCapture) -> None:
        self.requests.append(command)

    # -- in the I/O thread ---------------------------------------------------------------
    def process(self, events: list[tuple[float, bytes]], start: float, end: float) -> list[tuple[float, bytes]]:
        """Take the MIDI ``events`` received in [start, end) and return what to send in it.

        ``events`` must be in time order; the returned list is in time order, every time in
        [start, end). Called once per window, in order, with no gaps between windows.
        """
        out: list[tuple[float, bytes]] = []
        self._window_start = start
        follower = self.follower
        if self._window_end is not None and start > self._window_end and follower.last_activity is not None:
            # Windows skipped (asynchronous JACK skips a late client's cycles): we were not
            # listening then, so that time is no silence of the clock's and cannot make it lost.
            follower.last_activity += start - self._window_end
        if self._window_end is not None and start > self._window_end:
            follower.skipped(self._window_end, start)
        self._window_end = end
        while self.requests:
            self._handle(self.requests.popleft(), start, out)
        for time, data in events:
            for event in self.follower.feed(time, data):
                self._on_clock(event, out)
            if self.captures and (message := without_realtime(data)) and 0x80 <= message[0] < 0xF0:
                position = self.follower.position_at(time)  # a real-time byte inside a note: still the note
                for capture, _, _ in self.captures:
                    capture.feed(position, message)
        for event in self.follower.advance(start, end):
            self._on_clock(event, out)
        follower = self.follower
        if follower.transport is Transport.RUNNING and follower.last_position is not None:
            last = follower.last_position
            while (event := self.player.peek()) is not None and event.position < last + 1:
                due = follower.time_of(event.position)
                if due is None or due >= end:
                    break  # in a later window
                self.player.cursor += 1
                message = self.player.emit(event, max(due, start))
                if message:
                    out.append(message)
            self._close_captures(follower.position_at(end))
        self.state = follower.state()
        out.sort(key=lambda m: m[0])
        return out

    def _handle(self, command: object, now: float, out: list[tuple[float, bytes]]) -> None:
        if isinstance(command, QueueClip):
            start = self._bar_start(command.bar)
            self.player.queue(clip_events(command.score, start), start)
            if self.follower.transport is Transport.RUNNING and self.follower.last_position is not None:
                self.player.seek(self.follower.last_position + 1)
            self.placed = Placed(start, start + clip_length(command.score))
        elif isinstance(command, StopClips):
            self.player.events, self.player.cursor = [], 0
            out.extend(self.player.release_all(now))
        elif isinstance(command, ArmCapture):
            start = self._bar_start(command.bar)
            end = command.until if command.until is not None else start + command.bars * clocks_per_bar(self.meter)
            command.capture.arm(start, end, self.meter)
            self.captures.append((command.capture, start, end))

    def _bar_start(self, bar: int | None) -> int:
        if bar is not None:
            return bar_position(bar, self.meter)
        follower = self.follower
        running = follower.transport is Transport.RUNNING and follower.last_position is not None
        return next_bar_line(follower.position, self.meter, running=running)

    def _on_clock(self, event, out: list[tuple[float, bytes]]) -> None:
        self.clock_events.append(event)
        if self.observer is not None and (event.kind is not Kind.TICK
                                          or event.position % clocks_per_beat(self.meter) == 0):
            self.observer.put((event, self.follower.state()))
        if event.kind is Kind.TICK:
            previous, self._previous_tick = self._previous_tick, event
            seconds = self.follower.tick_seconds
            for clip_event in self.player.take(event.position, inclusive=True):
                due = event.time
                if previous is not None and previous.position == event.position - 1 and seconds:
                    # between two ticks of one window: where the tempo puts it, not late at the tick
                    between = previous.time + (clip_event.position - previous.position) * seconds
                    due = min(max(between, self._window_start), event.time)
                elif seconds:
                    # its tick (or the window it was due in) was lost: as early in this window as
                    # the tempo allows, not a whole tick late at the next tick
                    before = event.time - (event.position - clip_event.position) * seconds
                    due = min(max(before, self._window_start), event.time)
                message = self.player.emit(clip_event, due)
                if message:
                    out.append(message)
        else:
            self._previous_tick = None
        if event.kind in (Kind.STOP, Kind.LOST):
            out.extend(self.player.release_all(event.time))
        elif event.kind in (Kind.START, Kind.CONTINUE, Kind.POSITION):
            out.extend(self.player.release_all(event.time))
            self.player.seek(event.position)

    def _close_captures(self, position: float) -> None:
        for item in list(self.captures):
            capture, _, end = item
            if position >= end:
                capture.close()
                self.captures.remove(item)
