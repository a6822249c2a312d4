"""Helpers for a clock rig on a real JACK server: Debian's jack_midi_clock driven by a JACK timebase master.

- `TimebaseMaster`: a JACK-Client timebase master with an exact tempo map (4/4) and bar:beat:tick,
  so jack_midi_clock's tempo and Song Position Pointer come from numbers the test sets.
- `jack_midi_clock -d 0` as a subprocess: the clock master nobody here wrote.
- `Recorder`: a JACK client that records every MIDI event on its inputs with its exact frame.
- `Injector`: a JACK client that writes given events into a port at given frames (garbage, notes).
"""
from __future__ import annotations

import bisect
import contextlib
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from symusic import Note, Score, Track

jack = pytest.importorskip("jack")

RATE = 48000
TICKS_PER_BEAT = 1920.0


@dataclass
class TempoSegment:
    frame: int  # transport frame where it starts
    beat: float  # beats (quarters) from the song start at that frame
    bpm: float


class TimebaseMaster:
    """JACK timebase master: 4/4, a piecewise-constant tempo map, exact BBT for every cycle."""

    def __init__(self, bpm: float = 120.0) -> None:
        self.client = jack.Client("cadenza-timebase", no_start_server=True)
        self.segments = [TempoSegment(0, 0.0, bpm)]
        self.cycles: list[tuple[int, int]] = []  # (frame time, transport frame) of rolling cycles
        self.client.set_timebase_callback(self._timebase)
        self.client.activate()

    def set_tempo(self, bpm: float) -> None:
        self.segments = [TempoSegment(0, 0.0, bpm)]

    def change_tempo_at(self, frame: int, bpm: float) -> None:
        """From transport ``frame`` on, ``bpm`` (beats continue where the old tempo put them)."""
        self.segments = [*self.segments, TempoSegment(frame, self.beats_at(frame), bpm)]

    def segment(self, frame: int) -> TempoSegment:
        current = self.segments[0]
        for segment in self.segments:
            if segment.frame <= frame:
                current = segment
        return current

    def beats_at(self, frame: int) -> float:
        segment = self.segment(frame)
        return segment.beat + (frame - segment.frame) / RATE * segment.bpm / 60.0

    def frame_of_bar(self, bar: int) -> int:
        """Transport frame of a bar's downbeat (single-tempo maps)."""
        return round((bar - 1) * 4 * 60.0 / self.segments[0].bpm * RATE)

    def _timebase(self, state: int, blocksize: int, pos, new_pos: bool) -> None:
        if state == jack.ROLLING:
            # ``pos`` is the position of the *next* period (JACK's timebase contract): its frame
            # time is this period's plus one period.
            self.cycles.append((self.client.last_frame_time + blocksize, pos.frame))
        beats = self.beats_at(pos.frame)
        whole = math.floor(beats + 1e-9)
        pos.valid = jack.POSITION_BBT
        pos.bar = whole // 4 + 1
        pos.beat = whole % 4 + 1
        pos.tick = min(int((beats - whole) * TICKS_PER_BEAT), int(TICKS_PER_BEAT) - 1) if beats > whole else 0
        pos.bar_start_tick = (pos.bar - 1) * 4 * TICKS_PER_BEAT
        pos.beats_per_bar = 4.0
        pos.beat_type = 4.0
        pos.ticks_per_beat = TICKS_PER_BEAT
        pos.beats_per_minute = self.segment(pos.frame).bpm

    def locate(self, frame: int) -> None:
        self.client.transport_frame = frame

    def start_from(self, frame: int, timeout: float = 5.0) -> None:
        """Stop, move to ``frame``, wait until JACK is there (slow under load), then roll."""
        self.client.transport_stop()
        self.locate(frame)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state, position = self.client.transport_query()
            if state == jack.STOPPED and position["frame"] == frame:
                break
            time.sleep(0.01)
        else:
            raise AssertionError(f"JACK transport did not reach frame {frame} within {timeout:g} s")
        self.client.transport_start()

    def start(self) -> None:
        self.client.transport_start()

    def stop(self) -> None:
        self.client.transport_stop()

    def close(self) -> None:
        self.client.transport_stop()
        self.client.release_timebase()
        self.client.deactivate()
        self.client.close()


class Recorder:
    """Records (frame, bytes) of every MIDI event on its input ports, by port short name."""

    def __init__(self, names: list[str]) -> None:
        self.client = jack.Client("cadenza-recorder", no_start_server=True)
        self.ports = {name: self.client.midi_inports.register(name) for name in names}
        self.events: dict[str, list[tuple[int, bytes]]] = {name: [] for name in names}
        self.transport_offsets: set[int] = set()  # frame time - transport frame, while rolling
        self.cycles: list[tuple[int, int]] = []  # (frame time, transport frame) of rolling cycles
        self._last_first: int | None = None
        self._closing = False
        self._idle = threading.Event()
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        if self._closing:
            self._idle.set()
            return
        first = self.client.last_frame_time
        if first == self._last_first:
            return  # run again in a period already recorded (asynchronous JACK, late client): same events
        self._last_first = first
        state, position = self.client.transport_query_struct()
        if state == jack.ROLLING:
            self.transport_offsets.add(first - position.frame)
            self.cycles.append((first, position.frame))
        for name, port in self.ports.items():
            for offset, data in port.incoming_midi_events():
                self.events[name].append((first + offset, bytes(data)))

    def close(self) -> None:
        close_quietly(self)


class Injector:
    """Writes events into its output port: ``source(first_frame, frames, incoming)`` -> [(offset, bytes)],
    where ``incoming`` is this period's events on its input port as (offset, bytes)."""

    def __init__(self, name: str, source: Callable[[int, int, list], list[tuple[int, bytes]]]) -> None:
        self.client = jack.Client(name, no_start_server=True)
        self.out = self.client.midi_outports.register("out")
        self.inp = self.client.midi_inports.register("in")
        self.source = source
        self.written = 0
        self.failed = 0
        self._closing = False
        self._idle = threading.Event()
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        if self._closing:
            self._idle.set()
            return
        self.out.clear_buffer()
        incoming = [(offset, bytes(data)) for offset, data in self.inp.incoming_midi_events()]
        for offset, data in sorted(self.source(self.client.last_frame_time, frames, incoming), key=lambda e: e[0]):
            try:
                self.out.write_midi_event(offset, data)
                self.written += 1
            except jack.JackError:
                self.failed += 1

    def close(self) -> None:
        close_quietly(self)


def close_quietly(client) -> None:
    """Deactivate and close a rig client whose process callback returns at once once ``_closing``
    is set (and then sets ``_idle``): jack2 deactivates by cancelling the process thread, and a
    thread cancelled inside a Python callback crashed the benchmark (segfault in
    ``Client.deactivate`` on a busy asynchronous server). Leave just after an idle period."""
    client._closing = True
    client._idle.wait(1.0)
    client.client.deactivate()
    client.client.close()


@dataclass
class ClockRig:
    """jack_midi_clock + timebase master + recorder on one JACK server."""

    server: str
    master: TimebaseMaster
    clock: subprocess.Popen
    recorder: Recorder
    clock_port: str = "jack_midi_clock:mclk_out"
    extra: list = field(default_factory=list)
    _sorted: tuple = ((), ())
    _sorted_key: tuple = ()

    def connect(self, source: str, target: str) -> None:
        self.recorder.client.connect(source, target)

    def wait(self, condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(0.005)

    def transport_frame_at(self, frame_time: float, period: int = 256) -> float | None:
        """The transport frame at a JACK frame time, if a cycle the rig's clients saw rolling
        (the recorder or the timebase master) holds it; None if neither saw that cycle.

        On asynchronous JACK the transport slips a period whenever the server runs late, so
        frame time and transport frame are related cycle by cycle, not by one offset, and a
        cycle nobody logged cannot be told.
        """
        cycles, starts = self._cycles_by_frame_time()
        k = bisect.bisect_right(starts, frame_time) - 1
        if k < 0 or frame_time >= cycles[k][0] + period:
            return None
        first, transport = cycles[k]
        return transport + (frame_time - first)

    def _cycles_by_frame_time(self) -> tuple[list[tuple[int, int]], list[int]]:
        """The logged cycles sorted by frame time, re-sorted only when more were logged."""
        key = (len(self.recorder.cycles), len(self.master.cycles))
        if self._sorted_key != key:
            cycles = sorted(set(self.recorder.cycles) | set(self.master.cycles))
            self._sorted, self._sorted_key = (cycles, [c[0] for c in cycles]), key
        return self._sorted

    def transport_tick_at(self, seconds: float) -> int | None:
        """The clock tick (24 PPQN from the transport's start) jack_midi_clock sent at a time in
        seconds, or None where no logged cycle says (see `transport_frame_at`)."""
        frame = self.transport_frame_at(round(seconds * RATE))
        return None if frame is None else round(self.master.beats_at(round(frame)) * 24)

    def transport_ticks_at(self, seconds: float, period: int = 256) -> set[int] | None:
        """The transport's position in whole clock ticks (24 PPQN, truncated as JACK's bar|beat|tick
        is) at a time in seconds, by each reading of that cycle's transport frame the rig's clients
        logged; None where none did.

        On asynchronous JACK a client that runs late reads the transport (and the frame time) of a
        later cycle, so the rig's two clients can log one cycle with transport frames a period or
        more apart: the truth is then known only to within those readings, and a position that
        equals the transport's by any of them counts as equal. Half a frame of slack: a master
        rounds a tick's frame to the nearest.
        """
        frame_time = round(seconds * RATE)
        cycles, starts = self._cycles_by_frame_time()
        k = bisect.bisect_right(starts, frame_time) - 1
        if k < 0 or frame_time >= cycles[k][0] + period:
            return None
        first = cycles[k][0]
        readings = [transport for start, transport in cycles[k::-1][:8] if start == first]
        return {math.floor(self.master.beats_at(transport + frame_time - first + 0.5) * 24) for transport in readings}

    def frame_time_of(self, transport_frame: int) -> float:
        """The JACK frame time at which the transport reached ``transport_frame`` (in a cycle a client saw)."""
        cycles = sorted(set(self.recorder.cycles) | set(self.master.cycles), key=lambda c: c[1])
        frames = [c[1] for c in cycles]
        k = bisect.bisect_right(frames, transport_frame) - 1
        if k < 0:
            raise ValueError(f"no rolling cycle at or before transport frame {transport_frame}")
        first, transport = cycles[k]
        return first + (transport_frame - transport)

    def clock_ticks_after(self, frame: int) -> list[int]:
        return [f for f, data in self.recorder.events["clock"] if data == b"\xf8" and f >= frame]


# Busy until ``seconds`` have passed or its parent is gone (a crashed benchmark must not leave
# its load running for an hour, loading every later measurement on the machine).
LOAD_PROGRAM = ("import os, time\nparent, end = os.getppid(), time.monotonic() + {seconds}\n"
                "while time.monotonic() < end and os.getppid() == parent:\n    pass\n")


@contextlib.contextmanager
def cpu_load(processes: int = 2, seconds: float = 600.0):
    """``processes`` busy-looping Python processes beside the test (what a DAW rendering does to
    the machine), each ending by itself after ``seconds`` at most or when this process dies, and
    stopped on exit."""
    busy = [subprocess.Popen([sys.executable, "-c", LOAD_PROGRAM.format(seconds=seconds)]) for _ in range(processes)]
    try:
        yield busy
    finally:
        for process in busy:
            process.send_signal(signal.SIGTERM)
        for process in busy:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()


def load_average() -> float:
    return os.getloadavg()[0]


class Probe:
    """Wraps a process function; notes the follower's state the first time each position is seen."""

    def __init__(self, session) -> None:
        self.session = session
        self.seen: dict[int, object] = {}

    def __call__(self, events, start, end):
        out = self.session.process(events, start, end)
        state = self.session.state
        if (state.position not in self.seen and state.transport.value == "running"
                and self.session.follower.last_position is not None):
            self.seen[state.position] = state
        return out


def make_clip(tpq: int = 480) -> Score:
    """Two bars: sixteenths on the grid, triplet eighths, swung and 32nd-note onsets off the
    24 PPQN grid, a drum track, and chords (several notes at one position)."""
    score = Score(tpq)
    keys = Track("keys", 0, False)
    for i in range(16):
        keys.notes.append(Note(i * tpq // 4, tpq // 8, 60 + i % 7, 80))  # sixteenths
    for i in range(6):
        keys.notes.append(Note(4 * tpq + i * tpq // 3, tpq // 4, 72, 70))  # triplet eighths (8 clock ticks)
    for i in range(4):
        keys.notes.append(Note(6 * tpq + i * tpq // 2 + (tpq * 3) // 40, tpq // 8, 65, 70))  # swung: 1.8 ticks late
    for i in range(8):
        keys.notes.append(Note(int(6.5 * tpq) + i * tpq // 8, tpq // 16, 84, 60))  # 32nds: every 3 ticks
    for pitch in (48, 52, 55):
        keys.notes.append(Note(7 * tpq, tpq, pitch, 90))  # a chord on beat 8
    drums = Track("drums", 0, True)
    for i in range(8):
        drums.notes.append(Note(i * tpq, tpq // 8, 36 if i % 2 == 0 else 38, 100))
    score.tracks.extend([keys, drums])
    return score


def clock_tick_frames(clock: list[tuple[int, bytes]], bpm: float) -> dict[int, int]:
    """Clock position -> frame of each tick a recorder saw after the last Start (a tick it missed
    in an xrun is skipped: the gap's length in tick intervals says how many)."""
    frames_per_tick = RATE * 60.0 / (24 * bpm)
    start = max(i for i, (_, data) in enumerate(clock) if data == b"\xfa")
    ticks: dict[int, int] = {}
    index, previous = -1, None
    for frame, data in clock[start:]:
        if data == b"\xf8":
            index += 1 if previous is None else max(1, round((frame - previous) / frames_per_tick))
            ticks[index], previous = frame, frame
    return ticks
