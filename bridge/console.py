"""The terminal side of `cadenza clock` and `cadenza bridge`: printing the clock, the live loop.

`cadenza clock` follows the clock and prints tempo, transport and position (one JSON line per
beat and per transport change with ``--json``). `cadenza bridge` is the live loop: a status
line, a prompt, commands; generated clips start on the next bar line.

Commands in the bridge (one line each, Enter to send):
  g PROMPT / any text   generate from the prompt at the clock's tempo and play it from the next bar
  k                     keep the current clip (a verdict recorded in memory for this session)
  r                     reject the current clip: it stops, every note released; verdict recorded
  v, c                  vary / continue: not built yet (the engine has no such RPC)
  s                     print the status line;  q  quit
"""
from __future__ import annotations

import json
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TextIO

from bridge.clock import ClockEvent, ClockState, Kind, Lock, bar_beat
from bridge.live import LiveSession, QueueClip, StopClips
from bridge.ports import open_ports
from engine.theory import Meter

STATUS_INTERVAL_S = 0.25
LOCK_WAIT_S = 5.0  # a prompt waits this long for a locked tempo, then generates nothing


def state_json(event: ClockEvent, state: ClockState) -> dict:
    """One line of `cadenza clock --json`."""
    where = bar_beat(event.position, state.meter)
    return {"event": event.kind.value, "time": round(event.time, 6), "transport": state.transport.value,
            "tempo_bpm": None if state.tempo_bpm is None else round(state.tempo_bpm, 4),
            "lock": state.lock.value, "confidence": state.confidence,
            "tempo_error_bpm": state.tempo_error_bpm,
            "bar": where.bar, "beat": where.beat, "tick": where.tick, "position": event.position,
            "meter": str(state.meter)}


def status_text(state: ClockState, engine: str = "") -> str:
    tempo = "---.-- BPM" if state.tempo_bpm is None else f"{state.tempo_bpm:6.2f} BPM"
    where = state.bar_beat
    lock = f"{state.lock.value} {state.confidence:.2f}" if state.lock is not Lock.UNLOCKED else state.lock.value
    text = f"{tempo} {lock:<13} {where.bar:4d}:{where.beat}  {state.transport.value:<8} {state.meter}"
    return f"{text}  engine: {engine}" if engine else text


def run_clock(meter: Meter, api: str, connect_in: str | None, as_json: bool, beats: int | None,
              seconds: float | None, out: TextIO = sys.stdout) -> int:
    """Follow the clock until ``beats`` beat lines, ``seconds`` seconds, or Ctrl-C."""
    observer: queue.SimpleQueue = queue.SimpleQueue()
    session = LiveSession(meter, observer=observer)
    deadline = None if seconds is None else time.monotonic() + seconds
    printed = 0
    with open_ports(session.process, api, connect_in=connect_in) as ports:
        session.follower.estimator.frame_exact = ports.frame_exact
        print(f"following MIDI clock on {ports.in_name!r} ({api})", file=sys.stderr, flush=True)
        while (beats is None or printed < beats) and (deadline is None or time.monotonic() < deadline):
            try:
                event, state = observer.get(timeout=0.1)
            except queue.Empty:
                continue
            if as_json:
                print(json.dumps(state_json(event, state)), file=out, flush=True)
            else:
                print(f"{event.kind.value:<9} {status_text(state)}", file=out, flush=True)
            if event.kind is Kind.TICK:
                printed += 1
        for error in ports.errors:
            print(f"cadenza: error in the MIDI thread: {error!r}", file=sys.stderr)
    return 0


@dataclass
class Verdicts:
    """Keep/reject verdicts of this session's clips, in memory (no engine RPC exists for them)."""

    clips: list[str] = field(default_factory=list)
    verdicts: dict[int, str] = field(default_factory=dict)

    def current(self) -> int | None:
        return len(self.clips) - 1 if self.clips else None


class Bridge:
    """The live loop: ports + LiveSession + engine client + the terminal."""

    def __init__(self, session: LiveSession, ports, client, out: TextIO) -> None:
        self.session, self.ports, self.client, self.out = session, ports, client, out
        self.verdicts = Verdicts()
        self.busy = ""
        self.tty = out.isatty()
        self._stop = threading.Event()

    def say(self, text: str) -> None:
        if self.tty:
            self.out.write("\r\x1b[2K")
        print(text, file=self.out, flush=True)

    def status(self) -> str:
        return status_text(self.session.state, self.busy or "ready")

    def _status_loop(self) -> None:  # a live status line above nothing: rewritten in place on a tty
        while not self._stop.wait(STATUS_INTERVAL_S):
            self.out.write("\x1b7\r\x1b[2K" + self.status() + "  > \x1b8")
            self.out.flush()

    def generate(self, prompt: str) -> None:
        from bridge.clock import Transport, clocks_per_bar
        from bridge.live import next_bar_line
        from engine.midi import smf_to_score
        from protos.cadenza.v1 import engine_pb2 as pb

        state = self.wait_for_lock()
        if state is None:
            self.busy = ""
            state = self.session.state
            error = "" if state.tempo_error_bpm is None else f", +-{state.tempo_error_bpm:.3f} BPM"
            self.say(f"no locked tempo after {LOCK_WAIT_S:g} s (clock {state.transport.value}, tempo "
                     f"{state.lock.value}{error}): nothing generated; start the DAW's transport, or check "
                     "the clock reaching 'Cadenza In'")
            return
        overrides = {"meter": str(state.meter), "tempo_bpm": state.locked_bpm}
        line = next_bar_line(state.position, state.meter, running=state.transport is Transport.RUNNING)
        overrides["start_bar"] = line // clocks_per_bar(state.meter) + 1  # where the clip will land
        self.busy = "generating"
        try:
            result = self.client.generate(prompt, pb.Overrides(**overrides))
        finally:
            self.busy = ""
        score = smf_to_score(result.midi)
        before = self.session.placed
        self.session.request(QueueClip(score))
        deadline = time.monotonic() + 2
        while self.session.placed is before and time.monotonic() < deadline:
            time.sleep(0.005)
        placed = self.session.placed
        self.verdicts.clips.append(prompt)
        spec = result.spec
        where = bar_beat(placed.start, state.meter) if placed else None
        self.say(f"clip {len(self.verdicts.clips)}: {spec.bars} bars of {spec.style} in {spec.key.tonic} "
                 f"{spec.key.mode} at {spec.tempo_bpm:.2f} BPM, lands on bar {where.bar if where else '?'}")

    def wait_for_lock(self, timeout: float = LOCK_WAIT_S) -> ClockState | None:
        """The clock's state once its tempo is locked (waiting up to ``timeout`` s), else None."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.session.state
            if state.locked_bpm is not None:
                return state
            if time.monotonic() >= deadline:
                return None
            if not self.busy:
                self.busy = "waiting for the tempo to lock"
            time.sleep(0.01)

    def command(self, line: str) -> bool:
        """Run one command line; False to quit."""
        line = line.strip()
        if not line:
            return True
        word, _, rest = line.partition(" ")
        if line == "q":
            return False
        if line == "s":
            self.say(self.status())
        elif line in ("k", "r"):
            current = self.verdicts.current()
            if current is None:
                self.say("no clip yet: type a prompt to generate one")
            else:
                verdict = "kept" if line == "k" else "rejected"
                self.verdicts.verdicts[current] = verdict
                if line == "r":
                    self.session.request(StopClips())
                self.say(f"clip {current + 1} {verdict} (recorded in this session only)")
        elif line in ("v", "c"):
            self.say(f"{'vary' if line == 'v' else 'continue'}: not built yet (the engine has no such RPC)")
        else:
            prompt = rest if word == "g" else line
            if not prompt:
                self.say("g needs a prompt, e.g. `g driving synth bass, 4 bars`")
            else:
                self.generate(prompt)
        return True

    def run(self, lines) -> int:
        self.say(__doc__.split("Commands in the bridge", 1)[1].split("\n", 1)[1].rstrip())
        status = threading.Thread(target=self._status_loop, daemon=True) if self.tty else None
        if status:
            status.start()
        try:
            for line in lines:
                try:
                    if not self.command(line):
                        break
                except Exception as error:  # a failed generation must not end the live loop
                    from bridge.client import EngineUnavailable, RequestRejected

                    if not isinstance(error, (RequestRejected, EngineUnavailable, ValueError)):
                        raise
                    self.say(f"error: {error}")
        finally:
            self._stop.set()
        return 0


def run_bridge(meter: Meter, api: str, connect_in: str | None, connect_out: str | None, engine: str | None,
               lines=None, out: TextIO = sys.stdout) -> int:
    from bridge.client import EngineClient, EngineProcess

    process = None if engine else EngineProcess()
    client = EngineClient(engine or process.target)
    try:
        client.check()
        session = LiveSession(meter)
        with open_ports(session.process, api, connect_in=connect_in, connect_out=connect_out) as ports:
            session.follower.estimator.frame_exact = ports.frame_exact
            print(f"bridge: clock in {ports.in_name!r}, clips out {ports.out_name!r}", file=out, flush=True)
            return Bridge(session, ports, client, out).run(lines if lines is not None else sys.stdin)
    finally:
        client.close()
        if process:
            process.close()
