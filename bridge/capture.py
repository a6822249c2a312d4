"""Capture the notes a DAW sends between two bar lines as an input clip (SMF bytes).

Pure code: `Capture.feed(position, data)` takes a channel message and the clock position
(24 PPQN ticks, fractional) at which it arrived, as `bridge.live.LiveSession` computes it from
the clock. Notes that start in [start, end) are kept, times relative to ``start``; a note
still held at ``end`` ends there. The result is a symusic `Score` at 480 ticks per quarter
with one track per MIDI channel, and SMF bytes through `engine.music.midi` like every other clip.
"""
from __future__ import annotations

import threading

from symusic import Note, Score, TimeSignature, Track

from bridge.clock import CLOCKS_PER_QUARTER
from engine.config import TICKS_PER_QUARTER
from engine.music.midi import score_to_smf
from engine.music.theory import Meter

DRUM_CHANNEL = 9
SCORE_TICKS_PER_CLOCK = TICKS_PER_QUARTER // CLOCKS_PER_QUARTER  # 20


class Capture:
    """Notes between two clock positions. `feed` runs in the I/O thread; `wait`/`score` elsewhere."""

    def __init__(self) -> None:
        self.start: int | None = None
        self.end: int | None = None
        self.meter = Meter(4, 4)
        self.held: dict[tuple[int, int], tuple[int, int]] = {}  # (channel, pitch) -> (onset, velocity)
        self.notes: list[tuple[int, int, int, int, int]] = []  # channel, pitch, onset, end, velocity
        self.finished = threading.Event()

    def arm(self, start: int, end: int, meter: Meter) -> None:
        """Record notes starting in [start, end) (clock positions)."""
        if end <= start:
            raise ValueError(f"capture end {end} must come after its start {start}")
        self.start, self.end, self.meter = start, end, meter

    def feed(self, position: float, data: bytes) -> None:
        """One channel message at ``position``; others (and anything outside the span) are ignored."""
        if self.start is None or self.end is None or self.finished.is_set() or len(data) < 3:
            return
        at = round(position * SCORE_TICKS_PER_CLOCK)  # score ticks, so a note on the bar line is on it
        start, end = self.start * SCORE_TICKS_PER_CLOCK, self.end * SCORE_TICKS_PER_CLOCK
        kind, channel, pitch, velocity = data[0] & 0xF0, data[0] & 0x0F, data[1] & 0x7F, data[2] & 0x7F
        key = (channel, pitch)
        if kind == 0x90 and velocity > 0:
            if key in self.held:
                self._end(key, at)
            if start <= at < end:
                self.held[key] = (at, velocity)
        elif kind == 0x80 or (kind == 0x90 and velocity == 0):
            if key in self.held:
                self._end(key, min(at, end))

    def _end(self, key: tuple[int, int], at: int) -> None:
        onset, velocity = self.held.pop(key)
        self.notes.append((key[0], key[1], onset, max(at, onset + 1), velocity))

    def close(self) -> None:
        """End every held note at the end bar line; the capture is complete."""
        if self.end is not None:
            for key in list(self.held):
                self._end(key, self.end * SCORE_TICKS_PER_CLOCK)
        self.finished.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    def score(self) -> Score:
        """The captured notes, time 0 = the start bar line, one track per channel."""
        if self.start is None:
            raise RuntimeError("the capture was never armed")
        offset = self.start * SCORE_TICKS_PER_CLOCK
        score = Score(TICKS_PER_QUARTER)
        score.time_signatures.append(TimeSignature(0, self.meter.numerator, self.meter.denominator))
        for channel in sorted({n[0] for n in self.notes}):
            track = Track(f"channel {channel + 1}", 0, channel == DRUM_CHANNEL)
            for _, pitch, onset, end, velocity in sorted(n for n in self.notes if n[0] == channel):
                track.notes.append(Note(onset - offset, end - onset, pitch, velocity))
            score.tracks.append(track)
        return score

    def smf(self) -> bytes:
        return score_to_smf(self.score())
