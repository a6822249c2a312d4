"""Scripted MIDI into "Cadenza In" on a real JACK server, frame-exact: clock, garbage, SysEx floods.

A `Script` is a list of (frame, bytes) events, frames counted from the period after the script
starts; `Script.source` is an `jack_rig.Injector` source that writes each event at its frame.
Events whose period JACK skipped are counted as lost, not written late. A `Probe` wraps the
session's process function and keeps its clock state after every period, with the period's end.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from bridge.clock import ClockState

RATE = 48000


def tick_frames(bpm: float) -> float:
    """Frames between two MIDI clock ticks (24 per quarter) at ``bpm``."""
    return RATE * 60.0 / (bpm * 24)


def garbage_events(total_bytes: int, seed: int, frame_step: int = 6, max_length: int = 16) -> list[tuple[int, bytes]]:
    """``total_bytes`` uniformly random bytes (all 256 values, real-time bytes included) cut into
    events of 1..``max_length`` bytes, one every ``frame_step`` frames."""
    rng = random.Random(seed)
    events, sent, frame = [], 0, 0
    while sent < total_bytes:
        length = min(rng.randint(1, max_length), total_bytes - sent)
        events.append((frame, rng.randbytes(length)))
        sent += length
        frame += frame_step
    return events


@dataclass
class Script:
    """Events at frames from the script's start; ``marks`` name frames (e.g. where valid clock resumes)."""

    events: list[tuple[int, bytes]]
    marks: dict[str, int] = field(default_factory=dict)
    start: int | None = None  # JACK frame of script frame 0, set on the first period
    cursor: int = 0
    written_bytes: int = 0
    lost: int = 0

    def __post_init__(self) -> None:
        self.events.sort(key=lambda e: e[0])

    @property
    def done(self) -> bool:
        return self.cursor >= len(self.events)

    def reached(self, mark: str) -> bool:
        """Whether the script has written its events up to the frame named ``mark``."""
        return self.start is not None and self.cursor > 0 and self.events[self.cursor - 1][0] >= self.marks[mark]

    def jack_frame(self, mark: str) -> int:
        assert self.start is not None
        return self.start + self.marks[mark]

    def source(self, first: int, frames: int, incoming: list) -> list[tuple[int, bytes]]:
        if self.start is None:
            self.start = first + frames
        out = []
        while self.cursor < len(self.events):
            frame, data = self.events[self.cursor]
            at = self.start + frame
            if at >= first + frames:
                break
            self.cursor += 1
            if at < first:
                self.lost += 1  # its period was skipped: lost in transit, as on a real cable
                continue
            out.append((at - first, data))
            self.written_bytes += len(data)
        return out


class Probe:
    """Wraps a LiveSession's process function; keeps (window end, state) after every period."""

    def __init__(self, session) -> None:
        self.session = session
        self.states: list[tuple[float, ClockState]] = []

    def __call__(self, events, start, end):
        out = self.session.process(events, start, end)
        self.states.append((end, self.session.state))
        return out
