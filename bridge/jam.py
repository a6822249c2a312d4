"""`cadenza jam`: play along with the DAW, one phrase of N bars at a time, generated live.

The loop, against the DAW's MIDI clock (one input port, "Cadenza In", carries the clock and
what the musician plays; "Cadenza Out" carries the jam):

- phrase 1 is generated from the prompt (a take in the session) and starts on a bar line;
- while phrase k plays, what is played into "Cadenza In" is captured from its first bar line
  up to its *cut*: a point before the next bar line, far enough ahead for the engine to answer
  (the recent generation latencies plus a margin, in clock ticks at the current tempo);
- at the cut the engine is asked for phrase k+1: the Continue RPC on phrase k's take with the
  captured notes as ``played`` context and ``new_bars_only`` (so the take is just the phrase,
  recorded in the session with phrase k as its parent);
- the answer is queued to start exactly on phrase k+1's bar line, scheduled against clock
  position by `bridge.live`. If the bar line's clock tick has already arrived when the answer
  reaches the I/O thread, the phrase is dropped: it plays nothing rather than late, and the
  jam says so. The next phrase still continues the dropped one (its bars are the ones the
  musician played over, and it continued the last phrase heard);
- a MIDI note or CC the musician picks (``--keep-note/--keep-cc``, ``--reject-note/--reject-cc``)
  is a verdict on the phrase playing when it arrives (the Verdict RPC); those messages are
  not captured as music.

The core is pure and driven by its callers' clock, like `bridge.clock` and `bridge.live`:
`PhrasePlan` (phrase bar lines and cuts as clock positions), `LeadEstimator` (how far ahead of
a bar line to ask), `Trigger` (which messages are verdicts) and `JamLive` (the I/O thread's
side: verdict messages out of the stream, a phrase queued only if it is still on time).
`Jam` is the thin shell that talks to the engine; `run_jam` opens the ports for the CLI.
"""
from __future__ import annotations

import math
import queue
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TextIO

from symusic import Score

from bridge.capture import Capture
from bridge.clock import ClockState, Transport, bar_beat, clocks_per_bar, clocks_per_beat
from bridge.live import ArmCapture, LiveSession, QueueClip, next_bar_line
from engine.music.theory import Meter

PHRASE_BARS_MAX = 64
FIRST_LATENCY_S = 0.5  # assumed before the first Continue answers (measured 0.04-0.3 s under load)
MARGIN_BEATS = 1.5  # asked this far ahead of what the latency needs: the goal is ready a beat early, and
# under load single answers came 2-4x slower than the slowest of the last four (bench_jam.py)
# The next answer may be slower than the slowest recent one, and the cut is noticed, and the answer
# handed to the I/O thread, a few milliseconds late.
LATENCY_FACTOR = 1.5
LATENCIES_KEPT = 4  # the lead follows the slowest of the last few answers
OUTCOME_TIMEOUT_S = 2.0
POLL_S = 0.005


# -- the pure core ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Trigger:
    """A verdict gesture: a note-on (velocity > 0) or a CC press (value >= 64) of one number, any channel."""

    kind: str  # "note" or "cc"
    number: int

    def __post_init__(self) -> None:
        if self.kind not in ("note", "cc"):
            raise ValueError(f"a trigger is a note or a cc, got {self.kind!r}")
        if not 0 <= self.number <= 127:
            raise ValueError(f"{self.kind} number must be 0-127, got {self.number}")

    def pressed(self, data: bytes) -> bool:
        """True for the message that gives the verdict."""
        if len(data) < 3:
            return False
        status, number, value = data[0] & 0xF0, data[1], data[2]
        if self.kind == "note":
            return status == 0x90 and number == self.number and value > 0
        return status == 0xB0 and number == self.number and value >= 64

    def owns(self, data: bytes) -> bool:
        """True for every message of this gesture (its release too): none of them is music."""
        if len(data) < 2:
            return False
        status = data[0] & 0xF0
        if self.kind == "note":
            return status in (0x80, 0x90) and data[1] == self.number
        return status == 0xB0 and data[1] == self.number


@dataclass(frozen=True)
class PhrasePlan:
    """Where the phrases lie on the clock: phrase k (0-based) starts at ``first + k * phrase_ticks``."""

    meter: Meter
    phrase_bars: int
    first: int  # clock position of phrase 0's first bar line

    def __post_init__(self) -> None:
        if not 1 <= self.phrase_bars <= PHRASE_BARS_MAX:
            raise ValueError(f"phrase must be 1-{PHRASE_BARS_MAX} bars, got {self.phrase_bars}")
        if self.first % clocks_per_bar(self.meter):
            raise ValueError(f"the first phrase must start on a bar line, got clock position {self.first}")

    @property
    def phrase_ticks(self) -> int:
        return self.phrase_bars * clocks_per_bar(self.meter)

    def start(self, k: int) -> int:
        """Clock position of phrase ``k``'s first bar line."""
        return self.first + k * self.phrase_ticks

    def bar(self, k: int) -> int:
        """Phrase ``k``'s first bar (1 = the song's first)."""
        return self.start(k) // clocks_per_bar(self.meter) + 1

    def phrase_at(self, position: float) -> int | None:
        """The phrase sounding at clock ``position`` (None before the first)."""
        if position < self.first:
            return None
        return int((position - self.first) // self.phrase_ticks)

    def cut(self, k: int, lead_ticks: int) -> int:
        """Where phrase ``k``'s capture ends and phrase k+1 is asked for: ``lead_ticks`` before
        phrase k+1's bar line, but not before phrase k's own first tick."""
        return max(self.start(k) + 1, self.start(k + 1) - lead_ticks)


@dataclass
class LeadEstimator:
    """How many clock ticks before a bar line to ask for the phrase that starts there.

    ``factor`` times the slowest of the last `LATENCIES_KEPT` answers (or ``first_latency_s``
    before any) in ticks at the current tempo, plus ``margin_beats``; at most the whole phrase
    (then the capture is empty and the jam answers the previous phrase only).
    """

    margin_beats: float = MARGIN_BEATS
    first_latency_s: float = FIRST_LATENCY_S
    factor: float = LATENCY_FACTOR
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCIES_KEPT))

    def add(self, seconds: float) -> None:
        self.latencies.append(seconds)

    def latency(self) -> float:
        return max(self.latencies) if self.latencies else self.first_latency_s

    def lead_ticks(self, tick_seconds: float, meter: Meter, phrase_ticks: int) -> int:
        if tick_seconds <= 0:
            raise ValueError(f"tick_seconds must be positive, got {tick_seconds}")
        ticks = math.ceil(self.factor * self.latency() / tick_seconds + self.margin_beats * clocks_per_beat(meter))
        return min(ticks, phrase_ticks)


@dataclass(frozen=True)
class QueuePhrase:
    """From the jam thread: play ``score`` from clock position ``start`` if that is still on time."""

    score: Score
    start: int
    index: int


@dataclass(frozen=True)
class Queued:
    """The phrase was queued ``headroom_ticks`` before its bar line (clock position ``at``)."""

    index: int
    at: float
    headroom_ticks: float
    headroom_s: float | None


@dataclass(frozen=True)
class Late:
    """The phrase came when its bar line's tick had already arrived (``at``): it was dropped."""

    index: int
    at: float
    late_ticks: float
    late_s: float | None


@dataclass(frozen=True)
class Pressed:
    """A verdict gesture arrived at clock position ``position`` (``verdict``: keep or reject)."""

    verdict: str
    position: float
    time: float


class JamLive:
    """The jam's side of the I/O thread, wrapped around a `LiveSession`.

    ``process(events, start, end)`` takes out verdict gestures (reported as `Pressed`, never
    captured), queues requested phrases that are still on time (`Queued`) or drops late ones
    (`Late`), then lets the live session play and capture. A phrase is on time when the clock
    tick at its bar line has not arrived yet: the live session handles the queued clip before it
    reads this window's ticks, so the bar line's notes go out with that tick, frame-exact.

    Same real-time rules as `LiveSession`: other threads talk to it through `request()` (a deque)
    and read `outcomes` (a `queue.SimpleQueue`, whose put never blocks).
    """

    def __init__(self, session: LiveSession, keep: Trigger | None = None, reject: Trigger | None = None) -> None:
        self.session = session
        self.keep, self.reject = keep, reject
        self.requests: deque[QueuePhrase] = deque()
        self.outcomes: queue.SimpleQueue = queue.SimpleQueue()

    def request(self, command: QueuePhrase) -> None:
        self.requests.append(command)

    def process(self, events: list[tuple[float, bytes]], start: float, end: float) -> list[tuple[float, bytes]]:
        follower = self.session.follower
        music = []
        for time_, data in events:
            gesture = next((t for t in (self.keep, self.reject) if t is not None and t.owns(data)), None)
            if gesture is None:
                music.append((time_, data))
            elif gesture.pressed(data):
                verdict = "keep" if gesture is self.keep else "reject"
                self.outcomes.put(Pressed(verdict, follower.position_at(time_), time_))
        while self.requests:
            self._queue(self.requests.popleft(), start)
        return self.session.process(music, start, end)

    def _queue(self, command: QueuePhrase, now: float) -> None:
        follower = self.session.follower
        seconds = follower.tick_seconds
        running = follower.transport is Transport.RUNNING and follower.last_position is not None
        at = follower.position_at(now) if running else float(follower.position)
        if running and follower.last_position >= command.start:
            late = at - command.start
            self.outcomes.put(Late(command.index, at, late, late * seconds if seconds else None))
            return
        meter = self.session.meter
        self.session.request(QueueClip(command.score, command.start // clocks_per_bar(meter) + 1))
        headroom = command.start - at
        self.outcomes.put(Queued(command.index, at, headroom, headroom * seconds if seconds else None))


# -- the shell: engine, ports, terminal ------------------------------------------------------
@dataclass
class PhraseReport:
    """What happened to one phrase (the benchmark and the terminal read these)."""

    index: int
    bar: int
    take: str
    parent: str | None
    played_notes: int
    latency_s: float
    on_time: bool
    headroom_s: float | None
    lead_ticks: int


class Jam:
    """The jam loop: ask the engine for each next phrase at its cut, queue it, pass on verdicts.

    ``client`` is a `bridge.client.EngineClient`; ``live`` the `JamLive` its ports drive.
    ``say`` prints one line for the musician; ``phrases`` stops after that many phrases (None:
    until the transport stops or `stop()` is called).
    """

    def __init__(self, live: JamLive, client, prompt: str, phrase_bars: int, session: str,
                 say=print, lead: LeadEstimator | None = None, phrases: int | None = None) -> None:
        self.live, self.client, self.prompt = live, client, prompt
        self.phrase_bars, self.session_name = phrase_bars, session
        self.say, self.phrases = say, phrases
        self.lead = lead or LeadEstimator()
        self.meter = live.session.meter
        self.plan: PhrasePlan | None = None
        self.playing: dict[int, str] = {}  # phrase index -> take id that plays (or played) there
        self.reports: list[PhraseReport] = []
        self.verdicts: list[tuple[str, str]] = []  # (take, keep|reject) given live
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    # -- engine calls ------------------------------------------------------------------------
    def _first(self, state: ClockState) -> tuple[object, float]:
        from protos.cadenza.v1 import engine_pb2 as pb

        overrides = pb.Overrides(bars=self.phrase_bars, meter=str(self.meter), tempo_bpm=state.locked_bpm)
        began = time.perf_counter()
        result = self.client.generate(self.prompt, overrides, session=self.session_name)
        return result, time.perf_counter() - began

    def _next(self, parent: str, played: bytes) -> tuple[object, float]:
        from protos.cadenza.v1 import engine_pb2 as pb

        request = pb.ContinueRequest(session=self.session_name, take=parent, bars=self.phrase_bars,
                                     played=played, new_bars_only=True)
        began = time.perf_counter()
        result = self.client.call("Continue", request)
        return result, time.perf_counter() - began

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> list[PhraseReport]:
        """Jam until ``phrases`` phrases were handled, the transport stops, or `stop()`."""
        from engine.music.midi import smf_to_score

        state = self._wait(lambda s: s.locked_bpm is not None,
                           "the clock's tempo to lock (start the DAW's transport)")
        if state is None:
            return self.reports
        # Not a Continue: its latency (a cold engine's too) says nothing of the next phrase's.
        first, latency = self._first(state)
        state = self._wait(lambda s: s.transport is Transport.RUNNING and s.locked_bpm is not None,
                           "the DAW's Start (a transport already rolling is joined at its next Start or "
                           "Continue: MIDI clock says where it is only then)")
        if state is None:
            return self.reports
        per_beat = clocks_per_beat(self.meter)
        self.plan = plan = PhrasePlan(self.meter, self.phrase_bars,
                                      next_bar_line(state.position + per_beat, self.meter, running=True))
        result, k = first, 0
        score = smf_to_score(first.midi)
        while True:
            outcome = self._queue(k, score)
            on_time = isinstance(outcome, Queued)
            if on_time:
                self.playing[k] = result.take
            parent = result.take  # played notes are timed from this phrase's bar line: they go with it
            headroom = outcome.headroom_s if on_time else (-outcome.late_s if outcome.late_s is not None else None)
            lead = self._lead_ticks()
            report = PhraseReport(k, plan.bar(k), result.take, getattr(result, "parent", "") or None,
                                  _played_notes(result), latency, on_time, headroom, lead)
            self.reports.append(report)
            self.say(_describe(report, self.phrase_bars))
            if self.phrases is not None and k + 1 >= self.phrases:
                self._drain_until(plan.start(k + 1))
                return self.reports
            capture = Capture()
            self.live.session.request(ArmCapture(capture, bar=plan.bar(k), until=plan.cut(k, lead)))
            if not self._wait_capture(capture):
                return self.reports
            played = capture.smf() if capture.notes else b""
            result, latency = self._next(parent, played)
            self.lead.add(latency)
            score = smf_to_score(result.midi)
            k += 1

    def _lead_ticks(self) -> int:
        seconds = self.live.session.follower.tick_seconds or 60.0 / (24 * 120)
        return self.lead.lead_ticks(seconds, self.meter, self.plan.phrase_ticks)

    def _queue(self, k: int, score: Score) -> Queued | Late:
        self.live.request(QueuePhrase(score, self.plan.start(k), k))
        deadline = time.monotonic() + OUTCOME_TIMEOUT_S
        while time.monotonic() < deadline:
            outcome = self._next_outcome()
            if isinstance(outcome, (Queued, Late)) and outcome.index == k:
                return outcome
        raise RuntimeError("the MIDI thread did not answer within 2 s (is the JACK client running?)")

    def _next_outcome(self) -> object | None:
        """One outcome from the I/O thread (verdict gestures are acted on here), or None."""
        try:
            outcome = self.live.outcomes.get(timeout=POLL_S)
        except queue.Empty:
            return None
        if isinstance(outcome, Pressed):
            self._verdict(outcome)
        return outcome

    def _verdict(self, pressed: Pressed) -> None:
        from protos.cadenza.v1 import engine_pb2 as pb

        k = self.plan.phrase_at(pressed.position) if self.plan else None
        take = self.playing.get(k) if k is not None else None
        where = bar_beat(int(pressed.position), self.meter)
        if take is None:
            self.say(f"{pressed.verdict} at {where.bar}:{where.beat}: no phrase is playing, nothing recorded")
            return
        self.client.call("Verdict", pb.VerdictRequest(session=self.session_name, take=take, verdict=pressed.verdict))
        self.verdicts.append((take, pressed.verdict))
        shown = "kept" if pressed.verdict == "keep" else "rejected"
        self.say(f"phrase {k + 1} (take {take}) {shown} at {where.bar}:{where.beat}")

    def _running(self) -> bool:
        return self.live.session.state.transport is Transport.RUNNING

    def _wait(self, condition, what: str) -> ClockState | None:
        told = False
        while not self._stop.is_set():
            state = self.live.session.state
            if condition(state):
                return state
            if not told:
                self.say(f"waiting for {what}")
                told = True
            self._next_outcome()
        return None

    def _wait_capture(self, capture: Capture) -> bool:
        while not self._stop.is_set():
            if capture.wait(0):
                return True
            if self.live.session.state.transport in (Transport.STOPPED, Transport.LOST):
                self.say(f"transport {self.live.session.state.transport.value}: the jam ends")
                return False
            self._next_outcome()
        return False

    def _drain_until(self, position: int) -> None:
        """Keep taking verdicts until the clock reaches ``position`` (the last phrase's end)."""
        while not self._stop.is_set() and self._running() and self.live.session.state.position < position:
            self._next_outcome()
        while self._next_outcome() is not None:
            pass


def _played_notes(result) -> int:
    import json

    try:
        return int(json.loads(getattr(result, "params_json", "") or "{}").get("played_notes", 0))
    except (ValueError, TypeError):
        return 0


def _describe(report: PhraseReport, phrase_bars: int) -> str:
    bars = f"bars {report.bar}-{report.bar + phrase_bars - 1}" if phrase_bars > 1 else f"bar {report.bar}"
    source = f"from {report.parent}" if report.parent else "from the prompt"
    heard = f", answering {report.played_notes} played notes" if report.played_notes else ""
    if report.on_time:
        ahead = f"{report.headroom_s:.2f} s" if report.headroom_s is not None else "?"
        return (f"phrase {report.index + 1} ({bars}): take {report.take} {source}{heard}, "
                f"ready {ahead} before its bar line (generated in {report.latency_s:.2f} s)")
    late = f"{-report.headroom_s * 1000:.0f} ms" if report.headroom_s is not None else "too"
    return (f"phrase {report.index + 1} ({bars}): take {report.take} came {late} late "
            f"(generated in {report.latency_s:.2f} s): these bars play nothing rather than late")


def parse_trigger(note: int | None, cc: int | None, what: str) -> Trigger | None:
    """The trigger named by ``--WHAT-note`` or ``--WHAT-cc`` (at most one); ValueError names the flag."""
    if note is not None and cc is not None:
        raise ValueError(f"give --{what}-note or --{what}-cc, not both")
    if note is None and cc is None:
        return None
    kind, number = ("note", note) if note is not None else ("cc", cc)
    if not 0 <= number <= 127:
        raise ValueError(f"--{what}-{kind} must be 0-127, got {number}")
    return Trigger(kind, number)


def run_jam(prompt: str, phrase_bars: int, meter: Meter, session: str, engine: str | None,
            keep: Trigger | None, reject: Trigger | None, api: str = "jack",
            connect_in: list[str] | None = None, connect_out: str | None = None,
            phrases: int | None = None, state_dir: str | None = None, out: TextIO = sys.stdout,
            sync: str = "midi-clock") -> int:
    """`cadenza jam`: open the ports, reach (or start) the engine, jam until Ctrl-C or Stop."""
    from bridge.console import make_session
    from bridge.local_engine import connect
    from bridge.ports import JackPorts, open_ports

    if keep is not None and keep == reject:
        raise ValueError("keep and reject need different notes or CCs")
    connection = connect(engine, state_dir)
    client = connection.client
    try:
        live = JamLive(make_session(meter, sync), keep, reject)
        if api == "jack":
            ports = JackPorts(live.process, connect_in or [], [connect_out] if connect_out else [])
        else:
            ports = open_ports(live.process, api, (connect_in or [None])[0], connect_out)
        with ports:
            live.session.follower.use_port(ports)
            def say(text: str) -> None:
                print(text, file=out, flush=True)

            gestures = ", ".join(f"{name} = {t.kind} {t.number}" for name, t in (("keep", keep), ("reject", reject))
                                 if t is not None) or "no keep/reject gestures (--keep-note/--reject-note)"
            say(f"jam: clock and playing in {ports.in_name!r}, phrases out {ports.out_name!r}; "
                f"{phrase_bars}-bar phrases in session {session!r}; {gestures}")
            jam = Jam(live, client, prompt, phrase_bars, session, say, phrases=phrases)
            try:
                jam.run()
            except KeyboardInterrupt:
                jam.stop()
                say("jam stopped")
            for error in ports.errors:
                print(f"cadenza: error in the MIDI thread: {error!r}", file=sys.stderr)
        return 0
    finally:
        connection.close()
