"""Follow MIDI beat clock: transport, position and tempo from timed MIDI events.

Pure code: a `ClockFollower` is fed ``(time, bytes)`` pairs, one MIDI event each, with
``time`` in seconds on any monotonic clock the caller chooses (JACK frame time divided by
the sample rate, ``time.perf_counter()`` in an rtmidi callback, or synthetic times in a
test). It never reads a clock itself, so the same code runs under JACK and in unit tests.

MIDI beat clock, as followed here (MIDI 1.0 spec, "System Real Time Messages"):

- ``F8`` Timing Clock, 24 per quarter note. After Start the first ``F8`` is position 0;
  after Continue it is the position set by the last Song Position Pointer (or where the
  transport stopped). Every further ``F8`` advances the position by one clock tick.
- ``FA`` Start: position 0, running. ``FB`` Continue: running from the stored position.
  ``FC`` Stop: not running; the position stays.
- ``F2 lsb msb`` Song Position Pointer: the position in MIDI beats (sixteenth notes,
  6 clock ticks) of the next clock tick, 14 bits.

Real-time bytes (``F8``-``FF``) may sit anywhere inside an event (the MIDI spec allows them
between the bytes of another message, SysEx included, without ending it); they are taken out
and acted on first. What remains is a Song Position Pointer only if it is exactly ``F2`` and
two data bytes; anything else (notes, SysEx of any size, truncated or malformed messages,
stray data bytes) is not clock and is counted in `ClockFollower.ignored`, changing nothing.
Running status does not arise: JACK and the rtmidi backends hand over whole messages, each
with its status byte, so an event of data bytes only is ignored like any other stray bytes.

A SysEx is never kept: an event is scanned at C speed (``bytes.translate``) whatever its size,
and one longer than `SYSEX_MAX_BYTES` (in one event, or continued over several, as a SysEx
split into chunks arrives) is counted in `ClockFollower.dropped_sysex` with a logged warning
(at most one per `WARN_INTERVAL_S`), so a flood costs neither memory nor the clock.

Tempo comes from a least-squares line through the times of the last `window` ticks of the
current run (ticks since the last Start/Continue), so jitter averages out; a change point
test restarts the window when the newest ticks all leave the line on one side, so a tempo
change is followed within a few ticks instead of a whole window. Meter is not in MIDI
clock: bar:beat comes from the meter the caller gives (the DAW's).
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from engine.music.theory import Meter

CLOCKS_PER_QUARTER = 24
CLOCKS_PER_SPP_BEAT = 6

TIMING_CLOCK = 0xF8
START = 0xFA
CONTINUE = 0xFB
STOP = 0xFC
SONG_POSITION = 0xF2
REALTIME_FIRST = 0xF8
SYSEX_START = 0xF0
SYSEX_END = 0xF7
SYSEX_MAX_BYTES = 64 * 1024  # longer SysEx is dropped with a warning (the follower reads none anyway)
WARN_INTERVAL_S = 1.0
_REALTIME = bytes(range(REALTIME_FIRST, 0x100))
_NOT_REALTIME = bytes(range(REALTIME_FIRST))
_DATA = bytes(range(0x80))

log = logging.getLogger("cadenza.clock")


def without_realtime(data: bytes) -> bytes:
    """``data`` with any real-time bytes (F8-FF) taken out: the message they interrupted."""
    return data.translate(None, _REALTIME)

# Clock loss: ticks that stop without a Stop. 0.2 s is more than one tick interval at the
# slowest accepted tempo (20 BPM: 125 ms per tick) and leaves room to notice it within 300 ms.
LOSS_TIMEOUT_S = 0.2


class Transport(Enum):
    """What the clock master's transport is doing, as far as the clock tells."""

    STOPPED = "stopped"
    RUNNING = "running"
    LOST = "lost"  # running, then ticks stopped without a Stop; waits for Continue/SPP/Start


class Kind(Enum):
    """What a fed event meant to the follower."""

    TICK = "tick"
    START = "start"
    CONTINUE = "continue"
    STOP = "stop"
    POSITION = "position"  # Song Position Pointer
    LOST = "lost"


@dataclass(frozen=True)
class ClockEvent:
    """One thing that happened: at ``time``, the clock position ``position`` (clock ticks).

    For TICK, ``position`` is the tick's own position; for the others it is the position
    the next tick will have.
    """

    kind: Kind
    time: float
    position: int


@dataclass(frozen=True)
class BarBeat:
    """A position in a meter: bar and beat count from 1, tick (24 PPQN clocks) from 0."""

    bar: int
    beat: int
    tick: int

    def __str__(self) -> str:
        return f"{self.bar}:{self.beat}:{self.tick:02d}"


def clocks_per_beat(meter: Meter) -> int:
    """Clock ticks in one beat of the meter (a beat is one 1/denominator note)."""
    return meter.beat_ticks(CLOCKS_PER_QUARTER)


def clocks_per_bar(meter: Meter) -> int:
    """Clock ticks in one bar of the meter."""
    return meter.numerator * clocks_per_beat(meter)


def bar_beat(position: int, meter: Meter) -> BarBeat:
    """The bar:beat:tick of a clock position (ticks since the song's start) in ``meter``."""
    bar, rest = divmod(position, clocks_per_bar(meter))
    beat, tick = divmod(rest, clocks_per_beat(meter))
    return BarBeat(bar + 1, beat + 1, tick)


def bar_position(bar: int, meter: Meter) -> int:
    """The clock position of the downbeat of ``bar`` (1 = the song's first bar)."""
    if bar < 1:
        raise ValueError(f"bar must be 1 or more, got {bar}")
    return (bar - 1) * clocks_per_bar(meter)


def bpm_from_tick_seconds(seconds: float) -> float:
    """Quarter notes per minute for a clock tick interval in seconds."""
    return 60.0 / (CLOCKS_PER_QUARTER * seconds)


@dataclass
class TempoEstimator:
    """Seconds per clock tick from tick times: least squares over a sliding window.

    ``add(time, index)`` takes a tick time and its index in the current run (increasing
    integers; a gap stands for ticks lost in transit); ``restart()`` begins a new run (after
    Start, Continue or a relocate) and keeps the last estimate until the new run has two ticks.
    The change point test compares the last ``change_ticks`` ticks with the line through the
    ticks before them: if all lie on one side, further off than ``change_sigmas`` times the
    line's noise (robust scale of its residuals, at least ``noise_floor_s``), the tempo changed
    and the window restarts with the newest ticks that are off the old line (at least two).
    """

    window: int = 96
    change_ticks: int = 6
    change_sigmas: float = 3.0
    noise_floor_s: float = 0.0002
    points: deque[tuple[int, float]] = field(default_factory=deque)
    tick_seconds: float | None = None
    changes: int = 0

    def restart(self) -> None:
        self.points.clear()

    def add(self, time: float, index: int) -> None:
        self.points.append((index, time))
        while len(self.points) > self.window:
            self.points.popleft()
        if len(self.points) >= 3 * self.change_ticks:
            keep = self._after_change()
            if keep:
                for _ in range(len(self.points) - keep):
                    self.points.popleft()
                self.changes += 1
        if len(self.points) >= 2:
            self.tick_seconds = _fit(list(self.points))[0]

    def noise(self) -> float:
        """Robust scale (1.4826 x median absolute residual) of the ticks around their line."""
        points = list(self.points)
        slope, intercept = _fit(points)
        deviations = sorted(abs(t - (intercept + slope * i)) for i, t in points)
        return 1.4826 * deviations[len(deviations) // 2]

    def _after_change(self) -> int:
        """How many of the newest ticks follow a tempo change (0: no change seen)."""
        k = self.change_ticks
        points = list(self.points)
        slope, intercept = _fit(points[:-k])
        residuals = [t - (intercept + slope * i) for i, t in points]
        deviations = sorted(abs(r) for r in residuals[:-k])
        scale = max(1.4826 * deviations[len(deviations) // 2], self.noise_floor_s)
        recent = residuals[-k:]
        same_side = all(r > 0 for r in recent) or all(r < 0 for r in recent)
        if not (same_side and abs(sum(recent) / k) > self.change_sigmas * scale):
            return 0
        # Keep the newest ticks that are off the old line, on the same side, beyond the noise:
        # the ticks before the change would bend the new line.
        sign = 1.0 if recent[-1] > 0 else -1.0
        keep = 0
        for r in reversed(residuals):
            if sign * r <= self.change_sigmas * scale:
                break
            keep += 1
        return max(keep, 2)


def _fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares slope and intercept of time against index (centred for precision)."""
    n = len(points)
    i0, t0 = points[0]
    mean_i = sum(i - i0 for i, _ in points) / n
    mean_t = sum(t - t0 for _, t in points) / n
    sxx = sxy = 0.0
    for i, t in points:
        di = i - i0 - mean_i
        sxx += di * di
        sxy += di * (t - t0 - mean_t)
    slope = sxy / sxx
    intercept = t0 + mean_t - slope * (i0 + mean_i)
    return slope, intercept


@dataclass(frozen=True)
class ClockState:
    """A snapshot of the follower, safe to hand to another thread (immutable)."""

    transport: Transport
    tempo_bpm: float | None
    position: int  # clock ticks: the last tick's position while running, else the next tick's
    bar_beat: BarBeat
    last_tick_time: float | None
    meter: Meter


class ClockFollower:
    """Transport, position and tempo of a MIDI clock master, from its timed events.

    ``feed(time, data)`` takes one MIDI event; ``check(now)`` notices clock loss (call it
    regularly, e.g. once per audio period); both return the `ClockEvent` list they caused.
    Times must not go backwards.
    """

    def __init__(self, meter: Meter | None = None, loss_timeout: float = LOSS_TIMEOUT_S,
                 estimator: TempoEstimator | None = None) -> None:
        self.meter = meter or Meter(4, 4)
        self.loss_timeout = loss_timeout
        self.estimator = estimator or TempoEstimator()
        self.transport = Transport.STOPPED
        self.next_position = 0  # position the next tick gets
        self.last_position: int | None = None  # position of the last tick in this run
        self.last_tick_time: float | None = None
        self.last_activity: float | None = None  # last Start/Continue/tick while running
        self.run_index = 0  # ticks since the last Start/Continue, for the tempo line
        self.ticks = 0
        self.ignored = 0
        self.missed = 0  # ticks inferred lost in transit (see _missed_ticks)
        self.dropped_sysex = 0  # SysEx messages longer than SYSEX_MAX_BYTES
        self._sysex_bytes: int | None = None  # bytes of the SysEx still open (continued by the next event)
        self._warned_at: float | None = None

    # -- input ---------------------------------------------------------------------------
    def feed(self, time: float, data: bytes | bytearray | list[int]) -> list[ClockEvent]:
        """Interpret one MIDI event received at ``time``; non-clock events are ignored."""
        events: list[ClockEvent] = []
        if not isinstance(data, bytes | bytearray):  # not a MIDI byte at all (e.g. 300): poison the event
            data = bytes(byte if 0 <= byte <= 0xFF else 0xF4 for byte in data)
        for byte in data.translate(None, _NOT_REALTIME):
            self._realtime(time, byte, events)
        rest = data.translate(None, _REALTIME)
        if rest:
            if len(rest) == 3 and rest[0] == SONG_POSITION and rest[1] < 0x80 and rest[2] < 0x80:
                self._sysex_bytes = None  # a system common message ends any SysEx
                self._song_position(time, rest[1] | rest[2] << 7, events)
            else:
                self.ignored += 1
                self._follow_sysex(time, rest)
        return events

    def _follow_sysex(self, time: float, rest: bytes) -> None:
        """Measure a SysEx (whole, or continued over events) and drop an oversized one with a warning."""
        status = rest.translate(None, _DATA)  # any status byte ends the SysEx (F7, or anything else)
        if rest[0] == SYSEX_START:
            self._sysex_bytes, status = 0, status[1:]
        elif self._sysex_bytes is None:
            return  # neither a SysEx nor its continuation (data bytes, perhaps ended by F7)
        before = self._sysex_bytes
        self._sysex_bytes += len(rest)
        if before <= SYSEX_MAX_BYTES < self._sysex_bytes:
            self.dropped_sysex += 1
            if self._warned_at is None or time - self._warned_at >= WARN_INTERVAL_S:
                self._warned_at = time
                log.warning("dropped a SysEx of more than %d bytes on the clock input (%d dropped so far)",
                            SYSEX_MAX_BYTES, self.dropped_sysex)
        if status:
            self._sysex_bytes = None

    def check(self, now: float) -> list[ClockEvent]:
        """Declare the clock lost if it runs but no tick came for ``loss_timeout`` seconds."""
        if (self.transport is Transport.RUNNING and self.last_activity is not None
                and now - self.last_activity > self.loss_timeout):
            self.transport = Transport.LOST
            if self.last_position is not None:
                self.next_position = self.last_position + 1
            return [ClockEvent(Kind.LOST, now, self.next_position)]
        return []

    def _realtime(self, time: float, byte: int, events: list[ClockEvent]) -> None:
        if byte == TIMING_CLOCK:
            self._tick(time, events)
        elif byte == START:
            self.next_position = 0
            self._run(time, Kind.START, events)
        elif byte == CONTINUE:
            self._run(time, Kind.CONTINUE, events)
        elif byte == STOP:
            if self.transport is Transport.RUNNING and self.last_position is not None:
                self.next_position = self.last_position + 1
            self.transport = Transport.STOPPED
            self.last_position = None
            events.append(ClockEvent(Kind.STOP, time, self.next_position))
        # FE active sensing, FF reset, F9/FD undefined: not clock

    def _run(self, time: float, kind: Kind, events: list[ClockEvent]) -> None:
        self.transport = Transport.RUNNING
        self.last_position = None
        self.last_activity = time
        self.run_index = 0
        self.estimator.restart()
        events.append(ClockEvent(kind, time, self.next_position))

    def _song_position(self, time: float, beats: int, events: list[ClockEvent]) -> None:
        position = beats * CLOCKS_PER_SPP_BEAT
        if (self.transport is Transport.RUNNING and self.last_position is not None
                and 0 <= self.next_position - position <= CLOCKS_PER_SPP_BEAT):
            # While running, a pointer to the sixteenth we are in confirms the position (masters
            # may send it just after the first tick); only a real jump relocates.
            return
        self.next_position = position
        if self.transport is Transport.LOST:
            self.transport = Transport.STOPPED  # recovered: position known, waits for Continue
        if self.transport is Transport.RUNNING:
            # A relocate while rolling without Stop/Continue around it: a new run.
            self.last_position = None
            self.run_index = 0
            self.estimator.restart()
        events.append(ClockEvent(Kind.POSITION, time, self.next_position))

    def _tick(self, time: float, events: list[ClockEvent]) -> None:
        self.ticks += 1
        if self.transport is not Transport.RUNNING:
            # Many masters send clock while stopped: tempo only (as its own run), no position.
            if self.last_tick_time is not None and 0 < time - self.last_tick_time < 2 * self.loss_timeout:
                self.run_index += 1
            else:
                self.run_index = 0
                self.estimator.restart()
            self.estimator.add(time, self.run_index)
            self.last_tick_time = time
            return
        missed = self._missed_ticks(time)
        self.missed += missed
        self.run_index += missed
        self.next_position += missed
        self.estimator.add(time, self.run_index)
        self.run_index += 1
        self.last_position = self.next_position
        self.next_position += 1
        self.last_tick_time = time
        self.last_activity = time
        events.append(ClockEvent(Kind.TICK, time, self.last_position))

    def _missed_ticks(self, time: float) -> int:
        """Ticks lost in transit (an xrun, a dropped packet) before this one, or 0.

        A gap of very nearly 2, 3, ... tick intervals, when the ticks so far sit on their line
        within 2% of an interval (frame-exact stamps do; callback-time stamps, whose late
        ticks look like gaps, do not), is ticks that never arrived: no master pauses its clock
        for a tick without Stop. (A tempo halved from one tick to the next
        would look the same; the change point test then follows the new tempo, and the
        position is one tick late. Real tempo maps do not jump like that; lost ticks happen.)
        """
        seconds = self.estimator.tick_seconds
        if self.last_position is None or self.last_tick_time is None or not seconds:
            return 0
        ratio = (time - self.last_tick_time) / seconds
        whole = round(ratio)
        if whole < 2 or abs(ratio - whole) > 0.25 or whole * seconds > self.loss_timeout:
            return 0
        if len(self.estimator.points) < 4 or self.estimator.noise() > 0.02 * seconds:
            return 0
        return whole - 1

    # -- output --------------------------------------------------------------------------
    @property
    def tick_seconds(self) -> float | None:
        return self.estimator.tick_seconds

    @property
    def tempo_bpm(self) -> float | None:
        seconds = self.estimator.tick_seconds
        return None if seconds is None or seconds <= 0 else bpm_from_tick_seconds(seconds)

    @property
    def position(self) -> int:
        """The last tick's position while running, else where the next tick will be."""
        if self.transport is Transport.RUNNING and self.last_position is not None:
            return self.last_position
        return self.next_position

    def position_at(self, time: float) -> float:
        """The clock position (fractional ticks) at ``time``, never past the next tick."""
        if self.transport is not Transport.RUNNING or self.last_position is None:
            return float(self.next_position)
        seconds = self.estimator.tick_seconds
        if not seconds or seconds <= 0 or self.last_tick_time is None:
            return float(self.last_position)
        ahead = (time - self.last_tick_time) / seconds
        return self.last_position + min(max(ahead, 0.0), 1.0 - 1e-9)

    def time_of(self, position: float) -> float | None:
        """When ``position`` is due by the last tick and the tempo, or None if unknown."""
        seconds = self.estimator.tick_seconds
        if self.last_position is None or self.last_tick_time is None or not seconds:
            return None
        return self.last_tick_time + (position - self.last_position) * seconds

    def state(self) -> ClockState:
        return ClockState(self.transport, self.tempo_bpm, self.position, bar_beat(self.position, self.meter),
                          self.last_tick_time, self.meter)
