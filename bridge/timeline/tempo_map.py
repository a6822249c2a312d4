"""A project's tempo map: bars <-> beats <-> seconds <-> samples, with tempo and meter changes.

Beats are quarter notes counted from the project's start (beat 0 = bar 1's downbeat), the
unit SMF ticks, DAWproject and Ardour use. Tempo is constant between changes (a step, not a
ramp), which is what SMF tempo events mean; meter changes fall on bar lines. Every exporter
asks this one object where a bar is, so MIDI, audio and project files agree on a position.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from bridge.timeline.errors import TimelineError

TEMPO_MIN_BPM = 1.0
TEMPO_MAX_BPM = 1000.0
METER_DENOMINATORS = (1, 2, 4, 8, 16, 32, 64)


class TempoMapError(TimelineError, ValueError):
    """A tempo map that cannot be used (tempo out of range, change off order, bad meter)."""


@dataclass(frozen=True)
class TempoChange:
    """From ``beat`` (quarter notes from the project start) on, the tempo is ``bpm`` quarters/minute."""

    beat: float
    bpm: float


@dataclass(frozen=True)
class MeterChange:
    """From 1-based ``bar`` on, the meter is ``numerator``/``denominator``."""

    bar: int
    numerator: int
    denominator: int

    @property
    def quarters_per_bar(self) -> float:
        return self.numerator * 4.0 / self.denominator


@dataclass(frozen=True)
class TempoMap:
    """Tempo steps and meter changes of a project; the first of each is at the start."""

    tempos: tuple[TempoChange, ...]
    meters: tuple[MeterChange, ...]

    def __post_init__(self) -> None:
        if not self.tempos or self.tempos[0].beat != 0:
            raise TempoMapError("a tempo map needs a tempo at beat 0")
        if not self.meters or self.meters[0].bar != 1:
            raise TempoMapError("a tempo map needs a meter at bar 1")
        for before, after in zip(self.tempos, self.tempos[1:], strict=False):
            if after.beat <= before.beat:
                raise TempoMapError(f"tempo changes must be in increasing beat order, got {before.beat:g} "
                                    f"then {after.beat:g}")
        for change in self.tempos:
            if not TEMPO_MIN_BPM <= change.bpm <= TEMPO_MAX_BPM:
                raise TempoMapError(f"tempo must be {TEMPO_MIN_BPM:g}-{TEMPO_MAX_BPM:g} BPM, got {change.bpm:g} "
                                    f"at beat {change.beat:g}")
        for before, after in zip(self.meters, self.meters[1:], strict=False):
            if after.bar <= before.bar:
                raise TempoMapError(f"meter changes must be in increasing bar order, got bar {before.bar} "
                                    f"then {after.bar}")
        for meter in self.meters:
            if meter.numerator < 1 or meter.denominator not in METER_DENOMINATORS:
                raise TempoMapError(f"meter must be N/D with N >= 1 and D one of {METER_DENOMINATORS}, "
                                    f"got {meter.numerator}/{meter.denominator} at bar {meter.bar}")
        # Seconds at each tempo change, so position lookups are a bisect and one multiply.
        seconds = [0.0]
        for before, after in zip(self.tempos, self.tempos[1:], strict=False):
            seconds.append(seconds[-1] + (after.beat - before.beat) * 60.0 / before.bpm)
        object.__setattr__(self, "_tempo_seconds", tuple(seconds))
        beats = [0.0]
        for before, after in zip(self.meters, self.meters[1:], strict=False):
            beats.append(beats[-1] + (after.bar - before.bar) * before.quarters_per_bar)
        object.__setattr__(self, "_meter_beats", tuple(beats))

    @classmethod
    def constant(cls, bpm: float, numerator: int = 4, denominator: int = 4) -> TempoMap:
        """One tempo and one meter for the whole project."""
        return cls((TempoChange(0.0, float(bpm)),), (MeterChange(1, int(numerator), int(denominator)),))

    # bars <-> beats
    def bar_to_beat(self, bar: int) -> float:
        """Beat (quarter notes from the start) of the downbeat of 1-based ``bar``."""
        if bar < 1:
            raise TempoMapError(f"bar must be >= 1 (bars are counted from 1), got {bar}")
        index = bisect.bisect_right([m.bar for m in self.meters], bar) - 1
        meter = self.meters[index]
        return self._meter_beats[index] + (bar - meter.bar) * meter.quarters_per_bar

    def meter_at_bar(self, bar: int) -> MeterChange:
        """The meter in force in ``bar``."""
        return self.meters[bisect.bisect_right([m.bar for m in self.meters], bar) - 1]

    def meter_at_beat(self, beat: float) -> MeterChange:
        """The meter in force at ``beat``."""
        return self.meters[bisect.bisect_right(self._meter_beats, beat) - 1]

    def beat_to_bar(self, beat: float) -> float:
        """1-based bar number of ``beat`` (fractional inside a bar)."""
        index = bisect.bisect_right(self._meter_beats, beat) - 1
        meter = self.meters[index]
        return meter.bar + (beat - self._meter_beats[index]) / meter.quarters_per_bar

    # beats <-> seconds
    def tempo_at(self, beat: float) -> float:
        """BPM in force at ``beat``."""
        return self.tempos[max(0, bisect.bisect_right([t.beat for t in self.tempos], beat) - 1)].bpm

    def beat_to_seconds(self, beat: float) -> float:
        """Seconds from the project start to ``beat``."""
        if beat < 0:
            raise TempoMapError(f"beat must be >= 0, got {beat:g}")
        index = bisect.bisect_right([t.beat for t in self.tempos], beat) - 1
        change = self.tempos[index]
        return self._tempo_seconds[index] + (beat - change.beat) * 60.0 / change.bpm

    def seconds_to_beat(self, seconds: float) -> float:
        """Beat at ``seconds`` from the project start."""
        if seconds < 0:
            raise TempoMapError(f"seconds must be >= 0, got {seconds:g}")
        index = bisect.bisect_right(self._tempo_seconds, seconds) - 1
        change = self.tempos[index]
        return change.beat + (seconds - self._tempo_seconds[index]) * change.bpm / 60.0

    # anything -> samples
    def bar_to_seconds(self, bar: int) -> float:
        """Seconds from the project start to the downbeat of ``bar``."""
        return self.beat_to_seconds(self.bar_to_beat(bar))

    def beat_to_sample(self, beat: float, sample_rate: int) -> int:
        """Nearest sample frame of ``beat`` at ``sample_rate``."""
        return round(self.beat_to_seconds(beat) * sample_rate)

    def bar_to_sample(self, bar: int, sample_rate: int) -> int:
        """Nearest sample frame of the downbeat of ``bar`` at ``sample_rate``."""
        return self.beat_to_sample(self.bar_to_beat(bar), sample_rate)

    def tempos_in_seconds(self) -> list[tuple[float, float]]:
        """(seconds, bpm) of every tempo change: what REAPER's tempo envelope stores."""
        return [(seconds, change.bpm) for seconds, change in zip(self._tempo_seconds, self.tempos, strict=True)]

    def meters_in_beats(self) -> list[tuple[float, MeterChange]]:
        """(beat, meter) of every meter change."""
        return list(zip(self._meter_beats, self.meters, strict=True))
