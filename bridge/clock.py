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
import math
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
DECODE_TOLERANCE_S = 0.0001  # a gap fits n intervals + m periods within this (frame rounding, tempo error)
DECODE_BACK_PERIODS = 2  # a tick may come back this many periods after a late one
STALE_PERIODS = 4  # a tick read again from an uncleared buffer comes at most this many periods later
# Ticks are placed on the master's grid from a reference tick at most this far back: within it no
# two positions fit one gap at 90-174 BPM (at 120 BPM, 32 ticks are 125 periods of 256 frames to the frame).
GRID_SPAN_S = 0.2
GRID_REFERENCES = 4  # the last ticks on the grid that vote for a new tick's position


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


class Lock(Enum):
    """How far the tempo estimate can be trusted."""

    UNLOCKED = "unlocked"  # no tempo from this run yet
    LOCKING = "locking"  # a tempo, not yet known to `LOCK_ERROR_BPM`
    LOCKED = "locked"  # `LOCK_TICKS` ticks or more on one line, standard error at most `LOCK_ERROR_BPM`


LOCK_TICKS = CLOCKS_PER_QUARTER  # ticks of one tempo before a lock: one quarter note
LOCK_ERROR_BPM = 0.01  # standard error of the tempo at which it locks
WINDOW_TICKS = 384  # ticks (four 4/4 bars) the line is fitted over
CHANGE_SPANS = (8, 24)  # the newest ticks tested for a new tempo
MIN_TICK_S = 60.0 / (CLOCKS_PER_QUARTER * 400.0)  # 400 BPM: no tempo change is believed beyond this
MAX_TICK_S = 60.0 / (CLOCKS_PER_QUARTER * 20.0)  # 20 BPM
_MAD = 1.4826  # median absolute deviation -> standard deviation (normal noise)


class _Sums:
    """Running sums of the points of one segment (indices and times relative to an origin)."""

    __slots__ = ("n", "si", "st", "sii", "sit", "stt")

    def __init__(self) -> None:
        self.n = 0
        self.si = self.st = self.sii = self.sit = self.stt = 0.0

    def add(self, i: float, t: float, sign: int = 1) -> None:
        self.n += sign
        self.si += sign * i
        self.st += sign * t
        self.sii += sign * i * i
        self.sit += sign * i * t
        self.stt += sign * t * t

    def centred(self) -> tuple[float, float, float]:
        """Sxx, Sxy, Syy about the segment's own means."""
        n = self.n
        return (self.sii - self.si * self.si / n, self.sit - self.si * self.st / n, self.stt - self.st * self.st / n)


@dataclass
class TempoEstimator:
    """Seconds per clock tick from tick times, robust to late, early, lost and bunched ticks.

    ``add(time, index)`` takes a tick time and its index in the current run (increasing
    integers; a gap stands for ticks lost in transit); ``restart()`` begins a new run (after
    Start, Continue or a relocate) and keeps the last estimate until the new run has two ticks.

    The ticks of a steady clock lie on a line, time against index, whose slope is the tick
    interval. What a loaded machine does to them (measured on asynchronous JACK, PLATFORM.md)
    is not noise around that line but *steps*: when the server skips a cycle the master's
    transport slips a whole period, and every later tick is that much late; a client whose
    cycle is skipped loses its ticks (a gap), and one that catches up sees several at once.
    So the fit is a line with one slope and an intercept of its own per *segment*: a tick
    further than `step_sigmas` noise scales (at least `step_floor_s`) from its segment's line
    opens a new segment (or joins the segment before, if it fits that one: a lone late tick),
    and the slope is the pooled least-squares slope within segments over the last ``window``
    ticks. A step moves an intercept, never the tempo; a lone tick is a segment of one point,
    which weighs nothing.

    A tempo change is a new slope, not a step: after every tick the newest ``span`` ticks
    (for each span in `change_spans`) are tested. They mean a new tempo when a line through
    them fits every one of them (within `fit_sigmas` noise scales), its slope is further
    than `change_sigmas` standard errors from the current one (and is a tempo between 20
    and 400 BPM), and it explains them at least four times better (in squared residuals) than
    the current slope with one step anywhere among them. Then the fit restarts from those ticks.

    The noise scale (see `noise`) is at least `noise_floor_s`. With ``frame_exact=False``
    (ticks stamped when a callback runs, up to a period late: rtmidi) the noise scale is that
    of the stamps around the line, so their period quantization, which looks like regular
    steps, stays inside it and only gross excursions open segments.
    """

    window: int = WINDOW_TICKS
    change_spans: tuple[int, ...] = CHANGE_SPANS
    change_sigmas: float = 5.0
    fit_sigmas: float = 4.0
    step_sigmas: float = 6.0
    step_floor_s: float = 0.0005
    noise_floor_s: float = 0.0002
    lock_ticks: int = LOCK_TICKS
    lock_error_bpm: float = LOCK_ERROR_BPM
    frame_exact: bool = True  # stamps at the event's own frame (JACK-Client), not at callback time (rtmidi)
    points: deque[tuple[int, float, int]] = field(default_factory=deque)  # (index, time, segment)
    tick_seconds: float | None = None
    changes: int = 0  # tempo changes followed
    reindexed: int = 0  # ticks the last `add` found missing from the caller's indices (see `_reindex`)
    steps: int = 0  # ticks that left their segment's line (steps, lone late or early ticks)

    def __post_init__(self) -> None:
        self._segments: dict[int, _Sums] = {}
        self._segment = 0  # the id of the segment the newest tick is in
        self._next_id = 0
        self._previous_segment: int | None = None
        self._origin = (0, 0.0)
        self._noise = self.noise_floor_s
        self._since_noise = 0
        self._fit_error: float | None = None  # standard error of tick_seconds (s), this run
        self._run_slope: float | None = None  # this run's slope (None until two ticks)
        self._used = 0  # ticks in the fit (in segments of two or more)

    # -- input ---------------------------------------------------------------------------
    def restart(self) -> None:
        self.points.clear()
        self._segments.clear()
        self._previous_segment = None
        self._run_slope = None
        self._fit_error = None
        self._used = 0

    def add(self, time: float, index: int) -> None:
        self.reindexed = 0
        if not self.points:
            self._origin = (index, time)
            self._new_segment()
            self._append(index, time, self._segment)
            return
        slope = self._run_slope
        if slope is None:  # the run's second tick: its interval is all there is
            last_index, last_time, _ = self.points[-1]
            if index > last_index and time > last_time:
                self._append(index, time, self._segment)
                self._refit()
            return
        last_index, last_time, _ = self.points[-1]
        ratio = (time - last_time) / (slope * max(index - last_index, 1))
        if len(self.points) < self.lock_ticks and any(abs(ratio * k - 1) <= 0.15 for k in (2, 3, 4)):
            self._reindex(index, time)  # the run's first intervals held ticks lost in transit
            return
        if len(self.points) < self.lock_ticks and ratio < 0.85 and len(self._segments) == 1:
            # Shorter than the run's intervals so far by more than any step: those held lost ticks
            # and a transport slip (measured at a Start on jackd -R under load: 2.37 intervals).
            # The run's tempo starts again from the last tick.
            self.restart()
            self._origin = (last_index, last_time)
            self._new_segment()
            self._append(last_index, last_time, self._segment)
            self._append(index, time, self._segment)
            self._refit()
            return
        segment = self._segment
        threshold = self._step_threshold()
        if abs(self._residual(segment, index, time, slope)) > threshold:
            self.steps += 1
            previous = self._previous_segment
            if previous in self._segments and abs(self._residual(previous, index, time, slope)) <= threshold:
                segment = previous  # back on the line before: the ticks in between were a lone excursion
                self._previous_segment = self._segment
                self._segment = previous
            else:
                self._previous_segment = self._segment
                segment = self._new_segment()
        self._append(index, time, segment)
        while self.points and index - self.points[0][0] >= self.window:
            old_index, old_time, old_segment = self.points.popleft()
            self._remove(old_index, old_time, old_segment)
        if self._changed():
            self.changes += 1
        self._refit()
        self._since_noise += 1
        if self._since_noise >= 12 or len(self.points) <= 2 * CLOCKS_PER_QUARTER:
            self._since_noise = 0
            self._noise = max(self.noise(), self.noise_floor_s)

    def _reindex(self, index: int, time: float) -> None:
        """Restart the run with its ticks numbered by this shorter interval: a run whose first
        ticks were lost (every other one, or two or three of every three or four) looked like a
        half, third or quarter of the tempo until a whole interval came.
        `reindexed` tells the caller how many ticks its indices were short at this tick."""
        last_index, last_time, _ = self.points[-1]
        interval = (time - last_time) / max(index - last_index, 1)
        first_index, first_time, _ = self.points[0]
        old = [(i, t) for i, t, _ in self.points] + [(index, time)]
        self.restart()
        self._origin = (first_index, first_time)
        self._new_segment()
        for _, t in old:
            self._append(first_index + round((t - first_time) / interval), t, self._segment)
        self.reindexed = self.points[-1][0] - index
        self._refit()

    def _new_segment(self) -> int:
        self._next_id += 1
        self._segment = self._next_id
        self._segments[self._segment] = _Sums()
        return self._segment

    def _append(self, index: int, time: float, segment: int) -> None:
        self.points.append((index, time, segment))
        self._segments[segment].add(index - self._origin[0], time - self._origin[1])

    def _remove(self, index: int, time: float, segment: int) -> None:
        sums = self._segments[segment]
        sums.add(index - self._origin[0], time - self._origin[1], -1)
        if sums.n == 0:
            del self._segments[segment]
        elif index - self._origin[0] > 1_000_000:  # pragma: no cover - a run of days: keep sums precise
            self._rebase()

    def _rebase(self) -> None:
        index, time, _ = self.points[0]
        self._origin = (index, time)
        for sums in self._segments.values():
            sums.__init__()
        for i, t, segment in self.points:
            self._segments[segment].add(i - index, t - time)

    def _residual(self, segment: int, index: int, time: float, slope: float) -> float:
        """How far ``time`` is from the line of ``segment`` at ``index`` (positive: late)."""
        sums = self._segments[segment]
        mean_i, mean_t = sums.si / sums.n, sums.st / sums.n
        return (time - self._origin[1]) - (mean_t + slope * (index - self._origin[0] - mean_i))

    def _step_threshold(self) -> float:
        return max(self.step_sigmas * self._noise, self.step_floor_s)

    def _refit(self) -> None:
        sxx = sxy = syy = 0.0
        used = groups = 0
        for sums in self._segments.values():
            if sums.n >= 2:
                a, b, c = sums.centred()
                sxx, sxy, syy, used, groups = sxx + a, sxy + b, syy + c, used + sums.n, groups + 1
        if sxx <= 0:
            return
        slope = sxy / sxx
        if not MIN_TICK_S / 2 < slope < 2 * MAX_TICK_S:
            return
        self._run_slope = self.tick_seconds = slope
        dof = used - groups - 1
        residual = max(syy - sxy * sxy / sxx, 0.0) / dof if dof > 0 else 0.0
        self._fit_error = math.sqrt(max(residual, 1e-12) / sxx)  # noise at least 1 us
        self._used = used

    def _changed(self) -> bool:
        """Whether the newest ticks follow a new tempo; if so the fit restarts from them."""
        slope = self._run_slope
        if slope is None:
            return False
        points = self.points
        scale = max(self._noise, self.noise_floor_s)
        for span in self.change_spans:
            if len(points) < span + 8:
                continue
            recent = [points[j][:2] for j in range(-span, 0)]
            new_slope, intercept = _fit(recent)
            if not MIN_TICK_S <= new_slope <= MAX_TICK_S:
                continue
            residuals = [t - (intercept + new_slope * i) for i, t in recent]
            if max(map(abs, residuals)) > self.fit_sigmas * scale:
                continue
            centred = [i - sum(i for i, _ in recent) / span for i, _ in recent]
            standard_error = scale / math.sqrt(sum(c * c for c in centred))
            if abs(new_slope - slope) <= self.change_sigmas * standard_error:
                continue
            if sum(r * r for r in residuals) * 4 > _best_step_fit(recent, slope):
                continue  # as well explained by the old tempo with a step among them
            self.restart()
            self._origin = recent[0]
            self._new_segment()
            for i, t in recent:
                self._append(i, t, self._segment)
            return True
        return False

    # -- output --------------------------------------------------------------------------
    def noise(self) -> float:
        """Robust scale of the recent tick times around a steady line.

        Frame-exact stamps: 1.4826 x the median absolute deviation of the tick intervals from
        their median, over the square root of two (an interval has the noise of two ticks);
        steps and lone late ticks each touch one or two intervals, which a median does not see.
        Callback stamps: 1.4826 x the median absolute residual around one least-squares line, since
        their period quantization makes most intervals alike and would hide the noise.
        """
        points = self.points
        count = min(len(points), 97)
        if not self.frame_exact:
            if count < 3:
                return 0.0
            recent = [points[j][:2] for j in range(-count, 0)]
            slope, intercept = _fit(recent)
            deviations = sorted(abs(t - (intercept + slope * i)) for i, t in recent)
            return _MAD * deviations[len(deviations) // 2]
        intervals = [points[j][1] - points[j - 1][1] for j in range(-count + 1, 0)
                     if points[j][0] - points[j - 1][0] == 1]
        if len(intervals) < 5:
            return 0.0
        intervals.sort()
        middle = intervals[len(intervals) // 2]
        deviations = sorted(abs(d - middle) for d in intervals)
        return _MAD * deviations[len(deviations) // 2] / math.sqrt(2.0)

    @property
    def lock(self) -> Lock:
        if self._run_slope is None or self.tick_seconds is None:
            return Lock.UNLOCKED
        error = self.error_bpm()
        if self._used >= self.lock_ticks and error is not None and error <= self.lock_error_bpm:
            return Lock.LOCKED
        return Lock.LOCKING

    def error_bpm(self) -> float | None:
        """Standard error of the tempo (BPM) from this run's fit, or None before one."""
        if self._fit_error is None or not self.tick_seconds:
            return None
        return bpm_from_tick_seconds(self.tick_seconds) * self._fit_error / self.tick_seconds

    def confidence(self) -> float:
        """0-1: the share of the window's ticks on the tempo line (not lone excursions),
        scaled down while the standard error is above `lock_error_bpm`."""
        error = self.error_bpm()
        if error is None or not self.points:
            return 0.0
        share = self._used / len(self.points)
        return round(share * min(1.0, self.lock_error_bpm / max(error, 1e-9)), 3)


def _best_step_fit(points: list[tuple[int, float]], slope: float) -> float:
    """Least squared residuals of ``points`` on lines of ``slope`` with one step (anywhere)."""
    residuals = [t - slope * i for i, t in points]
    n = len(residuals)
    best = math.inf
    total = sum(residuals)
    total_sq = sum(r * r for r in residuals)
    head = head_sq = 0.0
    for k in range(n):  # first k residuals on one level, the rest on another
        tail, tail_sq = total - head, total_sq - head_sq
        cost = tail_sq - tail * tail / (n - k)
        if k:
            cost += head_sq - head * head / k
        best = min(best, cost)
        head += residuals[k]
        head_sq += residuals[k] * residuals[k]
    return best


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


def exact_bpm(bpm: float, error_bpm: float | None) -> float:
    """The tempo to write: the roundest of a whole, a tenth or a hundredth of a BPM that lies
    within three standard errors (at least 0.002 BPM) of ``bpm``; else ``bpm`` to a hundredth.

    A steady 120 BPM clock estimated as 119.998 +- 0.0005 is written 120.00; 137.5 stays 137.50.
    """
    tolerance = max(3.0 * (error_bpm or 0.0), 0.002)
    for decimals in (0, 1):
        candidate = round(bpm, decimals)
        if abs(candidate - bpm) <= tolerance:
            return float(candidate)
    return round(bpm, 2)


@dataclass(frozen=True)
class ClockState:
    """A snapshot of the follower, safe to hand to another thread (immutable)."""

    transport: Transport
    tempo_bpm: float | None
    position: int  # clock ticks: the last tick's position while running, else the next tick's
    bar_beat: BarBeat
    last_tick_time: float | None
    meter: Meter
    lock: Lock = Lock.UNLOCKED
    confidence: float = 0.0  # 0-1, see `TempoEstimator.confidence`
    tempo_error_bpm: float | None = None  # standard error of tempo_bpm

    @property
    def locked_bpm(self) -> float | None:
        """The tempo to write into a clip (see `exact_bpm`), or None unless locked."""
        if self.lock is not Lock.LOCKED or self.tempo_bpm is None:
            return None
        return exact_bpm(self.tempo_bpm, self.tempo_error_bpm)


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
        self._unconfirmed = 0  # ticks inferred lost at the last tick, which a bunched tick may still be
        self.duplicates = 0  # ticks received twice at one frame (see `_tick`)
        self.stale = 0  # ticks received again later, a whole number of periods on (see `_grid_position`)
        self.off_grid = 0  # ticks stamped off the master's grid (see `_grid_position`)
        self.early = 0  # ticks stamped whole periods before the grid of the ticks before (see `_grid_position`)
        # The last ticks whose times fitted the master's grid: (time, position). Positions are
        # decoded from them by a vote, not from the last tick alone, so one tick stamped off the
        # grid cannot shift the rest.
        self._references: deque[tuple[float, int]] = deque(maxlen=GRID_REFERENCES)
        self._event_ticks = 0
        self.dropped_sysex = 0  # SysEx messages longer than SYSEX_MAX_BYTES
        self.period: float | None = None  # the ports' window (s): a JACK period, see `_missed_ticks`
        self.inferred_starts = 0  # runs begun without their Start/Continue (lost in a skipped cycle)
        self._gap: tuple[float, float] | None = None  # the last stretch of skipped windows
        # (earliest time the run's first tick can have, the run's first position): see `_ticks_since_anchor`
        self._anchor: tuple[float, int] | None = None
        self._sysex_bytes: int | None = None  # bytes of the SysEx still open (continued by the next event)
        self._warned_at: float | None = None

    # -- input ---------------------------------------------------------------------------
    def feed(self, time: float, data: bytes | bytearray | list[int]) -> list[ClockEvent]:
        """Interpret one MIDI event received at ``time``; non-clock events are ignored."""
        events: list[ClockEvent] = []
        if not isinstance(data, bytes | bytearray):  # not a MIDI byte at all (e.g. 300): poison the event
            data = bytes(byte if 0 <= byte <= 0xFF else 0xF4 for byte in data)
        self._event_ticks = 0  # clock bytes of this event so far (several in one event share its time)
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

    def advance(self, start: float, end: float) -> list[ClockEvent]:
        """Once per time window, after its events were fed: clock loss (MIDI clock comes as events).
        The window's length is taken as the period in which a JACK transport slips (see `_missed_ticks`)."""
        if end > start:
            self.period = end - start
        return self.check(start)

    def use_port(self, ports) -> None:
        """Trust interval-based lost-tick inference only on frame-exact ports (see `TempoEstimator`)."""
        self.estimator.frame_exact = ports.frame_exact

    def skipped(self, start: float, end: float) -> None:
        """The windows in [start, end) were never processed (asynchronous JACK skipped our client's
        cycles): whatever the master sent then is lost, a Start included (see `_tick`)."""
        self._gap = (start, end)

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
        self._anchor = (time, self.next_position)
        self.transport = Transport.RUNNING
        self.last_position = None
        self.last_activity = time
        self.run_index = 0
        self._references.clear()
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
            self._references.clear()
            self.estimator.restart()
        events.append(ClockEvent(Kind.POSITION, time, self.next_position))

    def _tick(self, time: float, events: list[ClockEvent]) -> None:
        self.ticks += 1
        if self._start_was_lost(time):
            # The master rolls but its Start (or Continue) came in a cycle we were not given: a run
            # from the stored position. Ticks lost with it are counted once the tempo is known.
            self.inferred_starts += 1
            self._run(time, Kind.START if self.next_position == 0 else Kind.CONTINUE, events)
            self._anchor = (self._gap[0], self.next_position)
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
        seconds = self.estimator.tick_seconds
        self._event_ticks += 1
        if (self.estimator.frame_exact and self._event_ticks == 1 and self.last_tick_time is not None
                and time == self.last_tick_time):
            # Two tick events at one frame: a tick delivered twice (asynchronous JACK runs a late
            # client again in the same period, rereading its buffers), never two ticks of a master's.
            # (Clock bytes inside one event, as in a SysEx or a bunch rtmidi hands over, all count.)
            self.duplicates += 1
            return
        judged = self._grid_known(time)  # whether this tick's time can be placed on the grid
        decoded, exact, periods = self._grid_position(time) if judged else (None, False, 0)
        if judged and not exact:
            self.off_grid += 1  # counted from the last tick, as before the lock (`_missed_ticks`)
            decoded = None
        if decoded is not None and self.last_position is not None and decoded <= self.last_position:
            # A position already given: a tick re-read (a stale buffer), or one whose position an
            # off-grid tick before it took. It takes no new position.
            self.stale += 1
            self.last_activity = time
            if all(decoded != position for _, position in self._references):
                self._references.append((time, decoded))  # on the grid (its position taken off it)
            return
        self.early += exact and periods < 0
        if decoded is None and (self._unconfirmed and self.last_tick_time is not None and seconds
                                and time - self.last_tick_time < 0.5 * seconds):
            # One of the ticks counted lost before the last one came after all, late: ticks
            # bunched after a stall. It takes no new position (the last tick already has it).
            self._unconfirmed -= 1
            self.missed -= 1
            self.last_activity = time
            return
        missed = self._missed_ticks(time) if decoded is None else decoded - self.last_position - 1
        self._unconfirmed = missed if decoded is None else 0
        self.missed += missed
        self.run_index += missed
        self.next_position += missed
        self.estimator.add(time, self.run_index)
        if self.estimator.reindexed > 0:  # ticks lost at the run's start, found by a shorter interval
            self.missed += self.estimator.reindexed
            self.run_index += self.estimator.reindexed
            self.next_position += self.estimator.reindexed
        self.run_index += 1
        self.last_position = self.next_position
        self.next_position += 1
        self.last_tick_time = time
        self.last_activity = time
        if self._anchor is not None and len(self.estimator.points) >= 4:
            lost = self._ticks_since_anchor(time)
            self.missed += lost
            self.last_position += lost
            self.next_position += lost
            judged = False  # the run's first ticks, now placed from its start
        if exact or not judged:
            self._references.append((time, self.last_position))  # on the grid, or nothing to judge it by
        events.append(ClockEvent(Kind.TICK, time, self.last_position))

    def _start_was_lost(self, time: float) -> bool:
        """Whether this tick is the first of a run whose Start was lost: the transport is stopped,
        the clock was silent (a master that sends clock while stopped is not), and our windows
        were skipped just before it (a Start we were given is never lost)."""
        if self.transport is not Transport.STOPPED or self._gap is None or not self.estimator.frame_exact:
            return False
        gap_start, gap_end = self._gap
        silent = self.last_tick_time is None or gap_start - self.last_tick_time > self.loss_timeout
        return silent and gap_end <= time < gap_end + self.loss_timeout

    def _ticks_since_anchor(self, time: float) -> int:
        """Ticks lost early in a run (before the tempo was known), counted once it is, or 0.

        jack_midi_clock sends Start (or Continue) and the run's first tick at the first frame
        of a period, and a JACK transport slips by whole periods only. So the tick at ``time``
        is ``n`` tick intervals and some whole periods after the run began, at a period boundary
        no earlier than the anchor (the Start's time; for a lost Start, the start of the windows
        we were skipped in). The one ``n`` that fits gives the tick's true position; if none or
        several fit, nothing is changed. Done once per run.
        """
        earliest, first_position = self._anchor
        self._anchor = None
        seconds, period = self.estimator.tick_seconds, self.period
        if not seconds or not period or not self.estimator.frame_exact:
            return 0
        fits = []
        for n in range(int((time - earliest + DECODE_TOLERANCE_S) / seconds) + 1):
            offset = (time - n * seconds - earliest) / period
            if abs(offset - round(offset)) * period <= DECODE_TOLERANCE_S and round(offset) >= 0:
                fits.append(n)
        if len(fits) != 1:
            return 0
        return max(first_position + fits[0] - self.last_position, 0)

    def _grid_known(self, time: float) -> bool:
        """Whether a tick at ``time`` can be placed on the master's grid from the reference ticks:
        frame-exact stamps, a JACK period, the tempo locked (and its ticks within 5% of an interval
        of its line) and the newest reference at most `GRID_SPAN_S` back. Otherwise (before the lock, or
        after a longer gap) `_missed_ticks` and `_ticks_since_anchor` place ticks, and the tick
        becomes the reference."""
        seconds = self.estimator.tick_seconds
        if (not self._references or self.last_position is None or not seconds or not self.period
                or not self.estimator.frame_exact or self.estimator.lock is not Lock.LOCKED):
            return False
        if not 0 <= time - self._references[-1][0] <= GRID_SPAN_S:
            return False
        return self.estimator.noise() <= 0.05 * seconds

    def _grid_position(self, time: float) -> tuple[int, bool, int]:
        """The position of a tick at ``time`` on the master's grid, whether its time fits it, and
        the periods it came after the grid of the newest reference tick that says so (negative: early).

        A master like jack_midi_clock sends each tick at its transport frame, and a JACK transport
        slips by whole periods only, so a tick ``n`` positions after a reference tick (one of the
        last `GRID_REFERENCES` that fitted, at most `GRID_SPAN_S` back) comes ``n`` tick intervals
        and ``m`` periods after it, to the frame
        (``m`` from -`DECODE_BACK_PERIODS`: a client that runs late reads the next period's
        transport). Measured on asynchronous JACK under load (jackd -R, 137.5 and 174 BPM), a client
        run late can also be handed a tick again a period or two later, its producer having been
        skipped and its buffer not cleared (``n`` = 0 here, or any position already given), or a
        tick at a frame off that grid; counting either as a new tick shifted every later position.
        A tick that fits with ``m`` < 0 (counted in `early`) is taken at its stamp: measured, most
        were on time and the ticks before them late (holding them back made them a period late);
        a few (0-4 a minute on jackd -R) were handed to us only, periods before the transport
        reached them, and give the position a period early once.
        Each reference where exactly one ``n`` fits within `DECODE_TOLERANCE_S` votes for its
        position; the most votes win (a tie: the newest reference's). A misdated tick can fit
        by chance (232 frames early is 3 periods late less an interval at 120 BPM, measured on
        jackd --no-realtime), but then the ticks before it outvote it for the ticks after.
        With no vote the tick is off the grid (misdated by a client run late, measured 47-768
        frames early, or the tempo changed): `_tick` counts it from the last tick as before the lock,
        and the references stay.
        """
        seconds, period = self.estimator.tick_seconds, self.period
        votes: dict[int, list[int]] = {}  # position -> [votes, periods from the newest voter]
        for reference_time, reference_position in self._references:  # oldest first
            gap = time - reference_time
            if not 0 <= gap <= GRID_SPAN_S:
                continue
            fits = []
            for ticks in range(int(gap / seconds + DECODE_BACK_PERIODS * period / seconds) + 2):
                rest = gap - ticks * seconds
                periods = round(rest / period)
                if periods >= -DECODE_BACK_PERIODS and abs(rest - periods * period) <= DECODE_TOLERANCE_S:
                    if ticks > 0 or 0 < periods <= STALE_PERIODS:
                        fits.append((ticks, periods))
            if len(fits) == 1:
                vote = votes.setdefault(reference_position + fits[0][0], [0, 0])
                vote[0] += 1
                vote[1] = fits[0][1]
        if votes:
            newest = list(votes)[-1]
            position = max(votes, key=lambda p: (votes[p][0], p == newest))
            return position, True, votes[position][1]
        reference_time, reference_position = self._references[-1]
        return reference_position + int((time - reference_time + DECODE_TOLERANCE_S) / seconds), False, 0

    def _missed_ticks(self, time: float) -> int:
        """Ticks lost in transit (a skipped JACK cycle, a dropped packet) before this one, or 0.

        With frame-exact stamps (``estimator.frame_exact``: callback-time stamps, quantized to
        periods, make gaps of their own) and the tempo known (four ticks on the run's line, within
        5% of an interval), over a gap no longer than `loss_timeout` unless our windows were
        skipped in it (ticks lost early in a run are counted by `_ticks_since_anchor`):

        - On JACK (`period` known: the ports' window), a master like jack_midi_clock sends each
          tick at its transport frame, and the transport slips only by whole periods (when the
          server runs late), so the gap since the last tick is ``n`` tick intervals plus ``m``
          periods, to the frame. The one ``(n, m)`` that fits within `DECODE_TOLERANCE_S` says
          ``n - 1`` ticks were lost; a tick late by two periods at 174 BPM (1.74 intervals) is
          one late tick, not a lost one. Used when exactly one pair fits.
        - Otherwise a gap of nearer 2, 3, ... tick intervals than any other whole number is
          ticks that never arrived (no
          master pauses its clock for a tick without Stop). A tick late by half an interval or
          more is counted as a lost one at first; if a tick then follows within half an interval
          (ticks bunched after a stall), it is that tick, and takes no new position (see `_tick`).
        """
        seconds = self.estimator.tick_seconds
        if self.last_position is None or self.last_tick_time is None or not seconds or not self.estimator.frame_exact:
            return 0
        gap = time - self.last_tick_time
        skipped = self._gap is not None and self.last_tick_time <= self._gap[0] and self._gap[1] <= time
        if len(self.estimator.points) < 4 or (gap > self.loss_timeout and not skipped):
            return 0  # a silence of the master's own is not ticks lost; one while we were skipped may be
        if self.estimator.noise() > 0.05 * seconds:
            return 0  # the ticks are not on their line: the tempo is not known well enough to count by
        if self.period:
            fits = []
            for ticks in range(1, int(gap / seconds + 1.5) + 1):
                rest = gap - ticks * seconds
                periods = round(rest / self.period)
                if periods >= -DECODE_BACK_PERIODS and abs(rest - periods * self.period) <= DECODE_TOLERANCE_S:
                    fits.append(ticks)
            if len(fits) == 1:
                return fits[0] - 1
        ratio = gap / seconds
        whole = round(ratio)
        if whole < 2:
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

    @property
    def lock(self) -> Lock:
        """The estimator's lock; unlocked while the clock is lost (no ticks to trust)."""
        return Lock.UNLOCKED if self.transport is Transport.LOST else self.estimator.lock

    def state(self) -> ClockState:
        lock = self.lock
        error = self.estimator.error_bpm()
        return ClockState(self.transport, self.tempo_bpm, self.position, bar_beat(self.position, self.meter),
                          self.last_tick_time, self.meter, lock,
                          self.estimator.confidence() if lock is not Lock.UNLOCKED else 0.0,
                          None if error is None else round(error, 6))
