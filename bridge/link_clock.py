"""Follow an Ableton Link session: tempo, beat and phase as the bridge's 24 PPQN clock ticks.

`LinkFollower` is a clock source with the interface of `bridge.clock.ClockFollower` (what
`bridge.live.LiveSession` drives): ``advance(start, end)`` is called once per time window of the
ports (a JACK period) and returns a `ClockEvent` TICK for every 24 PPQN tick of the Link
timeline that falls in the window, stamped at its exact time on the ports' clock, so the
player schedules clip events against Link beats exactly as it does against MIDI clock ticks.

- Position: clock tick ``k`` is Link beat ``k / 24`` on the timeline as Link aligns it for a
  quantum of one bar (``Meter`` beats in quarter notes), so bar lines are where the session's
  phase is 0: a clip queued for "the next bar" starts on the next bar of the session. Link beat
  values are each peer's own (only the phase is shared); ours start near 0 when we join.
- Tempo: the session's, exact (Link carries it as a number, there is nothing to estimate), and
  followed whichever peer changes it: every window reads the current session state.
- Time: Link's clock (``link.clock().micros()``, CLOCK_MONOTONIC_RAW on Linux) is mapped onto
  the ports' clock. On JACK, each period is mapped by JACK's own times for it
  (`JackPorts.cycle_times`: the period's first frame, its time and the next period's, which
  follow the server's real pace, late periods included), plus the offset between JACK's clock
  and Link's (the median of recent tight samples; the same clock on Linux, so about 0). On other
  ports, by the median of recent offsets between ``ports.now()`` and Link's clock.
- Transport: Link's timeline never stops. The follower runs while the session has at least one
  other peer, and is stopped (and unlocked: no tempo is reported as the session's) while Cadenza
  is alone, so Cadenza proposes no tempo of its own: it joins with a placeholder tempo that any
  existing session overrides, and generates nothing until a peer is there.
- Start/stop sync (``start_stop=True``, ``--sync link-start-stop``): Link's optional shared
  transport, which peers that enable it (Live, Bitwig, ...) start and stop together. The follower
  then runs only while the session plays: Start at the time the session started playing, with
  bar 1 at the beat it started on (peers start on a bar line of the quantum), Stop when it
  stops. Cadenza never starts or stops the session itself.

The `link` module is LinkPython-extern's binding of Ableton's Link library.
"""
from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable

from bridge.clock import (
    CLOCKS_PER_QUARTER,
    BarBeat,
    ClockEvent,
    ClockState,
    Kind,
    Lock,
    Transport,
    bar_beat,
    clocks_per_bar,
)
from engine.errors import Unavailable
from engine.music.theory import Meter

JOIN_TEMPO_BPM = 120.0  # the tempo our own session has until a peer's session overrides it
OFFSET_SAMPLES = 64  # recent (Link clock - ports' clock) samples whose median maps one onto the other
OFFSET_TIGHT_S = 0.0002  # a sample whose two reads of the ports' clock lie further apart is dropped
RELOCATE_TICKS = CLOCKS_PER_QUARTER  # the timeline jumping by more than a beat is a relocation, not a nudge


class LinkUnavailable(Unavailable):
    """The Link binding could not be loaded or enabled; the text says what to install."""


def join_session(bpm: float = JOIN_TEMPO_BPM):
    """A Link instance, enabled: it discovers peers on every network interface by multicast."""
    try:
        import link
    except ImportError as error:
        raise LinkUnavailable(f"Ableton Link is not available ({error}); pip install LinkPython-extern") from None
    session = link.Link(bpm)
    session.enabled = True
    return session


class LinkFollower:
    """The bridge's clock from an Ableton Link session (see the module docstring).

    ``now`` is the clock of the windows given to `advance` (default ``time.monotonic``; the
    ports' own with `use_port`). MIDI fed to it is not clock here and is counted in ``ignored``.
    """

    frame_exact = True

    def __init__(self, meter: Meter | None = None, link=None, now: Callable[[], float] = time.monotonic,
                 start_stop: bool = False) -> None:
        self.meter = meter or Meter(4, 4)
        self.link = link if link is not None else join_session()
        self.start_stop = start_stop
        if start_stop:
            self.link.startStopSyncEnabled = True
        self.origin = 0.0  # the Link beat of position 0 (where the session started playing, with start/stop)
        self.quantum = clocks_per_bar(self.meter) / CLOCKS_PER_QUARTER  # Link beats are quarter notes here
        self.now = now
        self.transport = Transport.STOPPED
        self.next_position = 0
        self.last_position: int | None = None
        self.last_tick_time: float | None = None
        self.last_activity: float | None = None
        self.ticks = 0
        self.ignored = 0
        self.relocations = 0
        self.peers = 0
        self._tempo: float | None = None
        self._offsets: deque[float] = deque(maxlen=OFFSET_SAMPLES)
        self._offset = 0.0  # Link seconds - ports' seconds (no JACK times), or Link µs - JACK µs / 1e6
        self._ports = None
        self._anchor = (0.0, 0.0, 1e6)  # (ports' time, Link micros there, Link micros per ports' second)
        self._session = None

    # -- the ports' side -------------------------------------------------------------------
    def use_port(self, ports) -> None:
        """Take the ports' clock as the time of the windows and events (and JACK's period times)."""
        self.now = ports.now
        self._ports = ports if getattr(ports, "jack_micros", None) and ports.jack_micros() is not None else None
        self._offsets.clear()

    def _sample_offset(self) -> None:
        read = self._ports.jack_micros if self._ports is not None else self.now
        scale = 1.0 if self._ports is not None else 1e6  # to microseconds
        before = read() * scale
        micros = self.link.clock().micros()
        after = read() * scale
        if after - before <= OFFSET_TIGHT_S * 1e6 or not self._offsets:
            self._offsets.append((micros - (before + after) / 2) / 1e6)
            self._offset = statistics.median(self._offsets)

    def _map_window(self, start: float, end: float) -> None:
        """Anchor the ports' time of this window on Link's clock."""
        cycle = self._ports.cycle_times() if self._ports is not None else None
        rate = getattr(self._ports, "samplerate", None)
        if cycle is not None and rate and abs(cycle[0] - start * rate) < 0.5 and cycle[2] > cycle[1] and end > start:
            frames, usecs, next_usecs = cycle
            self._anchor = (start, usecs + self._offset * 1e6, (next_usecs - usecs) / (end - start))
        else:
            self._anchor = (0.0, self._offset * 1e6, 1e6)

    def link_micros(self, time_: float) -> int:
        """The Link clock (microseconds) at ``time_`` on the ports' clock."""
        at, micros, per_second = self._anchor
        return round(micros + (time_ - at) * per_second)

    def port_time(self, micros: float) -> float:
        """The ports' clock (seconds) at Link clock ``micros``."""
        at, anchor, per_second = self._anchor
        return at + (micros - anchor) / per_second

    def beat_at(self, time_: float) -> float:
        """The session's beat (quarter notes, bar-aligned) at ``time_`` on the ports' clock."""
        session = self._session or self.link.captureAppSessionState()
        return session.beatAtTime(self.link_micros(time_), self.quantum) - self.origin

    def _time_at(self, session, position: float) -> float:
        """The ports' time at which clock ``position`` is due on the session's timeline."""
        return self.port_time(session.timeAtBeat(self.origin + position / CLOCKS_PER_QUARTER, self.quantum))

    # -- the follower interface ------------------------------------------------------------
    def feed(self, time_: float, data: bytes | bytearray | list[int]) -> list[ClockEvent]:
        """MIDI is not the clock when following Link: nothing changes."""
        self.ignored += 1
        return []

    def check(self, now: float) -> list[ClockEvent]:
        return []

    def skipped(self, start: float, end: float) -> None:
        """Skipped windows lose nothing here: every window reads the session's timeline afresh."""

    def advance(self, start: float, end: float) -> list[ClockEvent]:
        """The clock events of the window [start, end): a TICK at each Link tick in it."""
        self._sample_offset()
        self._map_window(start, end)
        session = self._session = self.link.captureAppSessionState()
        self.peers = self.link.numPeers()
        self._tempo = session.tempo()
        events: list[ClockEvent] = []
        playing = session.isPlaying() if self.start_stop else True
        until = end  # ticks up to here: the session's stop time, when it stops within this window
        if self.start_stop and not playing and self.transport is Transport.RUNNING:
            # A peer stopped the session as of a time that may still be ahead: play up to it.
            until = min(max(self.port_time(session.timeForIsPlaying()), start), end)
            playing = until > start
        if self.start_stop and playing and self.transport is not Transport.RUNNING:
            # bar 1 where the session starts playing (a time that may be ahead, or long past)
            self.origin = session.beatAtTime(session.timeForIsPlaying(), self.quantum)
        beat = (session.beatAtTime(self.link_micros(start), self.quantum) - self.origin) * CLOCKS_PER_QUARTER
        beat_end = (session.beatAtTime(self.link_micros(end), self.quantum) - self.origin) * CLOCKS_PER_QUARTER
        if self.peers == 0 or not playing or beat_end < 0:
            if self.transport is Transport.RUNNING:
                if self.last_position is not None:
                    self.next_position = self.last_position + 1
                self.transport, self.last_position = Transport.STOPPED, None
                events.append(ClockEvent(Kind.STOP, start, self.next_position))
            return events
        if self.transport is not Transport.RUNNING:
            self.transport, self.last_position = Transport.RUNNING, None
            self.next_position = max(math.ceil(beat), 0)
            at = max(start, self._time_at(session, 0)) if self.next_position == 0 else start
            events.append(ClockEvent(Kind.START if self.next_position == 0 else Kind.CONTINUE, at,
                                     self.next_position))
        elif self.last_position is not None and abs(beat - (self.last_position + 1)) > RELOCATE_TICKS:
            # The timeline moved (a peer forced a beat, or our session was merged into another).
            self.relocations += 1
            self.last_position, self.next_position = None, math.ceil(beat)
            events.append(ClockEvent(Kind.POSITION, start, self.next_position))
            events.append(ClockEvent(Kind.CONTINUE, start, self.next_position))
        while True:
            due = self._time_at(session, self.next_position)
            if due >= until:
                break
            due = max(due, start, self.last_tick_time or start)
            self.ticks += 1
            self.last_position, self.last_tick_time, self.last_activity = self.next_position, due, due
            events.append(ClockEvent(Kind.TICK, due, self.next_position))
            self.next_position += 1
        if until < end:  # the session stopped in this window
            self.transport, self.last_position = Transport.STOPPED, None
            events.append(ClockEvent(Kind.STOP, until, self.next_position))
        return events

    @property
    def tick_seconds(self) -> float | None:
        return None if not self._tempo else 60.0 / (self._tempo * CLOCKS_PER_QUARTER)

    @property
    def tempo_bpm(self) -> float | None:
        return self._tempo

    @property
    def position(self) -> int:
        if self.transport is Transport.RUNNING and self.last_position is not None:
            return self.last_position
        return self.next_position

    def position_at(self, time_: float) -> float:
        """The clock position (fractional ticks) at ``time_``, never past the next tick."""
        if self.transport is not Transport.RUNNING or self.last_position is None:
            return float(self.next_position)
        ahead = self.beat_at(time_) * CLOCKS_PER_QUARTER
        return min(max(ahead, float(self.last_position)), self.last_position + 1 - 1e-9)

    def time_of(self, position: float) -> float | None:
        """When ``position`` is due on the session's timeline (ports' clock), or None if unknown."""
        if self._session is None or self.last_position is None:
            return None
        return self._time_at(self._session, position)

    @property
    def lock(self) -> Lock:
        """Locked while a peer shares the session (its tempo is exact), else unlocked."""
        return Lock.LOCKED if self.peers > 0 and self._tempo else Lock.UNLOCKED

    def state(self) -> ClockState:
        locked = self.lock is Lock.LOCKED
        where: BarBeat = bar_beat(self.position, self.meter)
        return ClockState(self.transport, self._tempo if locked else None, self.position, where,
                          self.last_tick_time, self.meter, self.lock, 1.0 if locked else 0.0,
                          0.0 if locked else None)
