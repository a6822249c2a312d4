"""The terminal side of `cadenza clock` and `cadenza bridge`: printing the clock, the live loop.

`cadenza clock` follows the clock and prints tempo, transport and position (one JSON line per
beat and per transport change with ``--json``). `cadenza bridge` is the live loop: a prompt
line with editing and history, a status row that is never written over, commands; generated
clips start on the next bar line and are takes of the session.

Commands in the bridge (one line each, Enter to send; the status row under the prompt):
  g PROMPT / any text   generate from the prompt at the clock's tempo and play it from the next bar
  v                     vary the current clip (the engine's Vary) and play it from the next bar
  c                     continue the current clip: as many new bars, played from the next bar
  k                     keep the current clip (a verdict in the session's history)
  r                     reject the current clip: it stops, every note released; verdict recorded
  s                     print the status line;  h  this help;  q  quit
"""
from __future__ import annotations

import json
import queue
import sys
import threading
import time
from typing import TextIO

from bridge.arguments import SYNC_SOURCES
from bridge.clock import ClockEvent, ClockState, Kind, Lock, bar_beat
from bridge.live import LiveSession, QueueClip, StopClips
from bridge.ports import open_ports
from engine.music.theory import Meter

STATUS_INTERVAL_S = 0.25
LOCK_WAIT_S = 5.0  # a prompt waits this long for a locked tempo, then generates nothing


def make_session(meter: Meter, sync: str = "midi-clock", observer: queue.SimpleQueue | None = None) -> LiveSession:
    """A `LiveSession` following ``sync``: MIDI beat clock on the input port, or an Ableton Link session."""
    if sync == "midi-clock":
        return LiveSession(meter, observer=observer)
    if sync in ("link", "link-start-stop"):
        from bridge.link_clock import LinkFollower

        return LiveSession(meter, LinkFollower(meter, start_stop=sync == "link-start-stop"), observer=observer)
    raise ValueError(f"unknown sync source {sync!r}; accepted: {', '.join(SYNC_SOURCES)}")


def sync_text(session: LiveSession, ports) -> str:
    """Where the clock comes from, for the first line a command prints."""
    follower = session.follower
    if getattr(follower, "link", None) is not None:
        return "the Ableton Link session (waiting for a peer)" if not follower.link.numPeers() else \
            f"the Ableton Link session ({follower.link.numPeers()} peers)"
    return f"MIDI clock on {ports.in_name!r}"


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
              seconds: float | None, out: TextIO = sys.stdout, sync: str = "midi-clock") -> int:
    """Follow the clock until ``beats`` beat lines, ``seconds`` seconds, or Ctrl-C."""
    observer: queue.SimpleQueue = queue.SimpleQueue()
    session = make_session(meter, sync, observer)
    deadline = None if seconds is None else time.monotonic() + seconds
    printed = 0
    with open_ports(session.process, api, connect_in=connect_in) as ports:
        session.follower.use_port(ports)
        print(f"following {sync_text(session, ports)} ({api})", file=sys.stderr, flush=True)
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


class Bridge:
    """The live loop: ports + LiveSession + engine client + the terminal.

    Every clip is a take in the session ``session_name`` (so `cadenza history`, `keep`, `export`
    work on it afterwards); k and r record verdicts there, v and c call the engine's Vary and
    Continue on the current take. `command` runs one line; `run` reads lines (a pipe, a test),
    `run_terminal` is the interactive UI (prompt_toolkit).
    """

    def __init__(self, session: LiveSession, ports, client, out: TextIO, session_name: str = "") -> None:
        from bridge.cocreate_cli import default_session

        self.session, self.ports, self.client, self.out = session, ports, client, out
        self.session_name = session_name or default_session()
        self.clips = 0
        self.take = None  # the current clip's TakeResult / GenerateResult (with .take)
        self.busy = ""

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def status(self) -> str:
        take = f"  take {self.take.take}" if self.take is not None else ""
        return status_text(self.session.state, self.busy or "ready") + take

    def _play(self, result, what: str) -> None:
        """Queue a take's MIDI from the next bar line and say where it lands."""
        from engine.music.midi import smf_to_score

        score = smf_to_score(result.midi)
        before = self.session.placed
        self.session.request(QueueClip(score))
        deadline = time.monotonic() + 2
        while self.session.placed is before and time.monotonic() < deadline:
            time.sleep(0.005)
        placed = self.session.placed
        self.clips += 1
        self.take = result
        spec = result.spec
        where = bar_beat(placed.start, self.session.state.meter) if placed else None
        self.say(f"clip {self.clips} (take {result.take}, {what}): {spec.bars} bars of {spec.style} in "
                 f"{spec.key.tonic} {spec.key.mode} at {spec.tempo_bpm:.2f} BPM, lands on bar "
                 f"{where.bar if where else '?'}")

    def _overrides(self):
        from bridge.clock import Transport, clocks_per_bar
        from bridge.live import next_bar_line
        from protos.cadenza.v1 import engine_pb2 as pb

        state = self._working("waiting for the tempo to lock", self.wait_for_lock)
        if state is None:
            state = self.session.state
            error = "" if state.tempo_error_bpm is None else f", +-{state.tempo_error_bpm:.3f} BPM"
            self.say(f"no locked tempo after {LOCK_WAIT_S:g} s (clock {state.transport.value}, tempo "
                     f"{state.lock.value}{error}): nothing generated; start the DAW's transport, or check "
                     "the clock reaching 'Cadenza In'")
            return None
        overrides = {"meter": str(state.meter), "tempo_bpm": state.locked_bpm}
        line = next_bar_line(state.position, state.meter, running=state.transport is Transport.RUNNING)
        overrides["start_bar"] = line // clocks_per_bar(state.meter) + 1  # where the clip will land
        return pb.Overrides(**overrides)

    def wait_for_lock(self, timeout: float = LOCK_WAIT_S) -> ClockState | None:
        """The clock's state once its tempo is locked (waiting up to ``timeout`` s), else None."""
        deadline = time.monotonic() + timeout
        while (state := self.session.state).locked_bpm is None:
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)
        return state

    def _working(self, what: str, call):
        self.busy = what
        try:
            return call()
        finally:
            self.busy = ""

    def generate(self, prompt: str) -> None:
        """Generate at the clock's locked tempo (exactly: 120 BPM is written 120.00) and play it
        from the next bar line; with no lock within `LOCK_WAIT_S`, say so and generate nothing."""
        overrides = self._overrides()
        if overrides is None:
            return
        result = self._working("generating", lambda: self.client.generate(prompt, overrides,
                                                                           session=self.session_name))
        self._play(result, "from the prompt")

    def vary(self) -> None:
        from protos.cadenza.v1 import engine_pb2 as pb

        parent = self.take.take
        result = self._working("varying", lambda: self.client.call(
            "Vary", pb.VaryRequest(session=self.session_name, take=parent)))
        self._play(result, f"a variation of {parent}")

    def continue_(self) -> None:
        from protos.cadenza.v1 import engine_pb2 as pb

        parent = self.take.take
        result = self._working("continuing", lambda: self.client.call(
            "Continue", pb.ContinueRequest(session=self.session_name, take=parent, bars=self.take.spec.bars,
                                           new_bars_only=True)))
        self._play(result, f"continues {parent}")

    def verdict(self, verdict: str) -> None:
        from protos.cadenza.v1 import engine_pb2 as pb

        self.client.call("Verdict", pb.VerdictRequest(session=self.session_name, take=self.take.take,
                                                      verdict=verdict))
        if verdict == "reject":
            self.session.request(StopClips())
        shown = "kept" if verdict == "keep" else "rejected"
        self.say(f"clip {self.clips} (take {self.take.take}) {shown} in session {self.session_name}")

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
        elif line in ("h", "?"):
            self.say(HELP)
        elif line in ("k", "r", "v", "c"):
            if self.take is None:
                self.say("no clip yet: type a prompt to generate one")
            else:
                {"k": lambda: self.verdict("keep"), "r": lambda: self.verdict("reject"), "v": self.vary,
                 "c": self.continue_}[line]()
        else:
            prompt = rest if word == "g" else line
            if not prompt:
                self.say("g needs a prompt, e.g. `g driving synth bass, 4 bars`")
            else:
                self.generate(prompt)
        return True

    def _safely(self, line: str) -> bool:
        """`command`, with the engine's refusals said rather than ending the live loop."""
        from bridge.client import EngineUnavailable, RequestRejected

        try:
            return self.command(line)
        except (RequestRejected, EngineUnavailable, ValueError) as error:
            self.say(f"error: {error}")
            return True

    def run(self, lines) -> int:
        """Run command lines from an iterable (a pipe, a script) until q or its end."""
        self.say(HELP)
        for line in lines:
            if not self._safely(line):
                break
        return 0

    def run_terminal(self, history_file=None, input=None, output=None) -> int:
        """The interactive UI: a prompt line with editing and history (prompt_toolkit), the status
        on a row of its own below it, refreshed 4 times a second and never written over; what the
        bridge says scrolls above. Commands run on a worker thread, so the status keeps moving and
        the next line can be typed while the engine works."""
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.patch_stdout import patch_stdout

        history = FileHistory(str(history_file)) if history_file else InMemoryHistory()
        prompt = PromptSession(history=history, bottom_toolbar=self.status, refresh_interval=STATUS_INTERVAL_S,
                               input=input, output=output)
        work: queue.Queue = queue.Queue()
        done = threading.Event()

        def worker() -> None:
            while (line := work.get()) is not None:
                if not self._safely(line):
                    done.set()
                    break

        thread = threading.Thread(target=worker, name="bridge-commands", daemon=True)
        with patch_stdout(raw=True):
            self.out = sys.stdout  # the patched stdout: lines go above the prompt and the status row
            self.say(HELP)
            thread.start()
            while not done.is_set():
                try:
                    line = prompt.prompt("> ")
                except (EOFError, KeyboardInterrupt):
                    break
                if line.strip() == "q":
                    break
                work.put(line)
            work.put(None)
            thread.join(timeout=0.5)
        self.out = sys.__stdout__
        return 0


HELP = __doc__.split("Commands in the bridge", 1)[1].split("\n", 1)[1].rstrip()


def run_bridge(meter: Meter, api: str, connect_in: str | None, connect_out: str | None, engine: str | None,
               lines=None, out: TextIO = sys.stdout, session_name: str = "", state: str | None = None,
               sync: str = "midi-clock") -> int:
    """`cadenza bridge`: the terminal UI on a terminal, else commands read line by line from stdin."""
    from bridge.local_engine import connect

    connection = connect(engine, state)
    try:
        session = make_session(meter, sync)
        with open_ports(session.process, api, connect_in=connect_in, connect_out=connect_out) as ports:
            session.follower.use_port(ports)
            clock = f"clock in {ports.in_name!r}" if sync == "midi-clock" else f"clock from {sync_text(session, ports)}"
            print(f"bridge: {clock}, clips out {ports.out_name!r}", file=out, flush=True)
            bridge = Bridge(session, ports, connection.client, out, session_name)
            if lines is None and sys.stdin.isatty() and out.isatty():
                from engine.serving.local import runtime_dir

                return bridge.run_terminal(runtime_dir() / "bridge-history")
            return bridge.run(lines if lines is not None else sys.stdin)
    finally:
        connection.close()
