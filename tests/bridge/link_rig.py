"""A Link session in a network namespace of its own: two peers, one changing tempo, and Cadenza.

Run by `tests/bridge/test_link_clock.py` and `tests/benchmarks/bench_clock.py` through
`namespace_command` (``unshare --net``, or ``unshare -rn`` for a normal user), never on the
machine's real interfaces: Link finds peers by multicast, and in the new namespace only the
loopback interface exists (brought up here, so the peers find each other on it).

Inside, `main` starts its own JACK server (dummy backend; ``-S`` unless ``--async``), two Link
peers A and B (LinkPython-extern, Ableton's library, not our code), a recorder client, and:

- ``cadenza clock --sync link --json`` as a subprocess (the CLI as a user runs it);
- in this process, the bridge's `LiveSession` with a `LinkFollower` on `JackPorts`, queued with
  a clip of quarter notes (the code `cadenza bridge` runs after the engine returns a clip).

Peer B changes the session tempo mid-clip (at half a beat past a beat). The truth is peer B's
own session state: its timeline before the change for times before it, after it for times after.
JACK frames are mapped onto Link's clock by a line fitted through (frame_time, Link micros)
pairs the recorder samples every few milliseconds. Prints one JSON object: every note onset's
and every CLI beat line's phase error against B (ms), where the clip started (phase at the
bar, ms), and when Cadenza's tempo reached B's new one. It judges nothing: the caller does.
"""
from __future__ import annotations

import argparse
import bisect
import ctypes
import ctypes.util
import fcntl
import json
import math
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RATE = 48000
PERIOD = 256
QUANTUM = 4.0
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def namespace_command(argv: list[str]) -> list[str]:
    """``argv`` run in a new network namespace: ``unshare --net`` as root, else ``unshare -rn``
    (a user namespace too, mapping the user to root inside, so the namespace can be made)."""
    return ["unshare", "--net", "--", *argv] if os.geteuid() == 0 else ["unshare", "-rn", "--", *argv]


def loopback_up() -> None:
    """Bring up ``lo`` in this (new) network namespace, as ``ip link set lo up`` would."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))


def interfaces() -> list[str]:
    return sorted(name for _, name in socket.if_nameindex())


def start_jackd(synchronous: bool, realtime: bool = False) -> tuple[subprocess.Popen, str]:
    name = f"cadenza-link-{uuid.uuid4().hex[:6]}"
    os.environ["JACK_NO_START_SERVER"] = "1"
    process = subprocess.Popen(["jackd", "-n", name, "-R" if realtime else "--no-realtime",
                                *(["-S"] if synchronous else []),
                                "-d", "dummy", "-r", str(RATE), "-p", str(PERIOD)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "JACK_NO_AUDIO_RESERVATION": "1"})
    os.environ["JACK_DEFAULT_SERVER"] = name
    deadline = time.monotonic() + 10
    while subprocess.run(["jack_lsp", "-s", name], capture_output=True).returncode != 0:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("jackd did not come up in the namespace")
        time.sleep(0.1)
    return process, name


class FrameClock:
    """Maps JACK frames onto Link's clock by JACK's own time of each period, as the recorder's
    process callback reads it (`jack_get_cycle_times`), plus the offset of JACK's clock from
    Link's (sampled pairs; the same clock, CLOCK_MONOTONIC_RAW, on Linux)."""

    def __init__(self, recorder, link_clock) -> None:
        import jack

        self.clock = link_clock
        library = ctypes.CDLL(ctypes.util.find_library("jack") or "libjack.so.0")
        self._cycle_times, self._get_time = library.jack_get_cycle_times, library.jack_get_time
        self._cycle_times.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32),
                                      ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint64),
                                      ctypes.POINTER(ctypes.c_float)]
        self._get_time.restype = ctypes.c_uint64
        self._client = int(jack._ffi.cast("uintptr_t", recorder.client._ptr))
        self.cycles: dict[int, tuple[int, int]] = {}  # first frame -> (its micros, next period's micros)
        self.offsets: list[int] = []  # Link micros - JACK micros
        inner = recorder._process

        def process(frames: int) -> None:
            first, usecs, next_usecs, period = (ctypes.c_uint32(), ctypes.c_uint64(), ctypes.c_uint64(),
                                                ctypes.c_float())
            if self._cycle_times(self._client, first, usecs, next_usecs, period) == 0:
                self.cycles[first.value] = (usecs.value, next_usecs.value)
            inner(frames)

        recorder._process = process
        recorder.client.set_process_callback(process)  # JACK takes a new callback only while inactive
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while self._running:
            before = self._get_time()
            micros = self.clock.micros()
            after = self._get_time()
            if after - before < 100:
                self.offsets.append(micros - (before + after) // 2)
            time.sleep(0.01)

    def stop(self) -> None:
        self._running = False
        self._thread.join()

    def micros(self, frame: int) -> float:
        """Link micros at ``frame``: its period's times from JACK, plus the clocks' offset."""
        firsts = sorted(self.cycles)
        first = firsts[max(0, bisect.bisect_right(firsts, frame) - 1)]
        usecs, next_usecs = self.cycles[first]
        return usecs + (frame - first) * (next_usecs - usecs) / PERIOD + statistics.median(self.offsets)


def stop(process: subprocess.Popen) -> None:
    """End a process the rig started: asked first, killed if it has not gone in 5 s."""
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()


def grid_error_ms(state, micros: float, quantum: float) -> float:
    """How far ``micros`` is from the nearest multiple of ``quantum`` beats on ``state``'s timeline (ms)."""
    phase = state.phaseAtTime(round(micros), quantum)
    if phase > quantum / 2:
        phase -= quantum
    return phase * 60000.0 / state.tempo()


def alone_in_the_session(seconds: float = 0.5) -> dict:
    """Cadenza's follower with no other peer: what it reports (it must propose no tempo)."""
    from bridge.link_clock import LinkFollower, join_session
    from engine.music.theory import Meter

    follower = LinkFollower(Meter(4, 4), join_session(97.0))
    ticks, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        ticks += sum(event.kind.value == "tick" for event in follower.advance(now, now + 0.005))
        time.sleep(0.005)
    state = follower.state()
    follower.link.enabled = False
    return {"ticks": ticks, "transport": state.transport.value, "tempo_bpm": state.tempo_bpm,
            "lock": state.lock.value, "locked_bpm": state.locked_bpm}


def make_quarters(bars: int, tpq: int = 480):
    from symusic import Note, Score, Track

    score = Score(tpq)
    track = Track("keys", 0, False)
    for i in range(bars * 4):
        track.notes.append(Note(i * tpq, tpq // 4, 60 + (i % 4 == 0) * 12, 90))
    score.tracks.append(track)
    return score


# How long peers may take to find each other and Cadenza to join: a deadline, not a measure (10 s ran out
# once with the README's install and a CI run sharing 2 cores).
JOIN_SECONDS = 30.0


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tempo", type=float, default=120.0, help="the session's tempo at first")
    parser.add_argument("--to", type=float, default=150.0, help="the tempo peer B changes to")
    parser.add_argument("--bars", type=int, default=4, help="bars of quarter notes in the clip")
    parser.add_argument("--change-bar", type=int, default=1, help="B changes tempo in this bar of the clip")
    parser.add_argument("--async", dest="asynchronous", action="store_true", help="JACK without -S")
    parser.add_argument("--realtime", action="store_true", help="jackd -R (default: --no-realtime)")
    parser.add_argument("--load", type=int, default=0, help="busy processes beside the rig")
    parser.add_argument("--no-cli", action="store_true", help="skip `cadenza clock --sync link`")
    parser.add_argument("--bridge", action="store_true",
                        help="`cadenza bridge --sync link` generates a clip instead")
    parser.add_argument("--start-stop", action="store_true",
                        help="Link's start/stop sync: B starts the session, then stops it, Cadenza follows")
    args = parser.parse_args(argv)
    if args.bridge:
        return bridge_main(args)
    if args.start_stop:
        return start_stop_main(args)

    loopback_up()
    import link

    from bridge.clock import Transport
    from bridge.link_clock import LinkFollower, join_session
    from bridge.live import LiveSession, QueueClip
    from bridge.ports import JackPorts
    from engine.music.theory import Meter
    from tests.bridge.jack_rig import Recorder, cpu_load

    result: dict = {"interfaces": interfaces()}
    result["alone"] = alone_in_the_session()
    jackd, _ = start_jackd(not args.asynchronous, args.realtime)
    cli = None
    try:
        with cpu_load(args.load) if args.load else _nothing():
            peer_a, peer_b = link.Link(args.tempo), link.Link(args.tempo)
            peer_a.enabled = peer_b.enabled = True
            wait(lambda: peer_a.numPeers() >= 1 and peer_b.numPeers() >= 1, JOIN_SECONDS, "peers A and B to meet")
            recorder = Recorder(["out"])
            recorder.client.deactivate()
            frames = FrameClock(recorder, peer_a.clock())
            recorder.client.activate()
            if not args.no_cli:
                cli = subprocess.Popen([sys.executable, "-m", "bridge.cli", "clock", "--sync", "link", "--json",
                                        "--seconds", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True, bufsize=1, cwd=ROOT)
                cli_lines: list[str] = []
                threading.Thread(target=lambda: cli_lines.extend(iter(cli.stdout.readline, "")), daemon=True).start()
            # Cadenza joins with a tempo of its own that the session must override (it proposes none).
            follower = LinkFollower(Meter(4, 4), join_session(97.0))
            session = LiveSession(follower=follower)
            tempo_seen: list[tuple[int, float | None]] = []  # (Link micros, Cadenza's tempo) every 2 ms
            with JackPorts(session.process, connect_out=["cadenza-recorder:out"]) as ports:
                follower.use_port(ports)
                wait(lambda: session.state.transport is Transport.RUNNING and session.state.tempo_bpm, JOIN_SECONDS,
                     "Cadenza to join the session")
                if cli is not None:
                    wait(lambda: any('"tick"' in line for line in cli_lines), 30, "the CLI's first beat")
                result["joined_tempo"] = session.state.tempo_bpm
                session.request(QueueClip(make_quarters(args.bars)))
                wait(lambda: session.placed is not None, 5, "the clip to be placed")
                start = session.placed.start
                clock = peer_a.clock()
                change_beat = start / 24 + args.change_bar * QUANTUM + 1.5  # half a beat past beat 2 of that bar
                wait(lambda: follower.beat_at(ports.now()) >= change_beat,
                     (args.change_bar + 2) * QUANTUM * 60 / args.tempo + 10, "the bar of the change")
                before = peer_b.captureAppSessionState()
                state = peer_b.captureAppSessionState()
                changed_at = clock.micros()
                state.setTempo(args.to, changed_at)
                peer_b.commitAppSessionState(state)
                after = peer_b.captureAppSessionState()
                deadline = time.monotonic() + 4 * args.bars * 60 / min(args.tempo, args.to) + 3
                while time.monotonic() < deadline and session.player.pending():
                    tempo_seen.append((clock.micros(), follower.tempo_bpm))
                    time.sleep(0.002)
                time.sleep(0.5)
                result["xruns"], result["errors"] = ports.xruns, [repr(e) for e in ports.errors]
            frames.stop()
            recorder.close()
            onsets = [frame for frame, data in recorder.events["out"] if data[0] & 0xF0 == 0x90 and data[2]]
            result["notes"] = len(onsets)
            result["notes_written"] = args.bars * 4
            result["changed_at_us"] = changed_at
            result["beat_ms_after"] = 60000.0 / args.to

            def truth(micros: float):
                return before if micros < changed_at else after

            micros = [frames.micros(frame) for frame in onsets]
            result["onset_errors_ms"] = [grid_error_ms(truth(m), m, 1.0) for m in micros]
            result["onset_after_change_ms"] = [(m - changed_at) / 1000 for m in micros]
            result["clip_start_bar_error_ms"] = grid_error_ms(truth(micros[0]), micros[0], QUANTUM) if micros else None
            result["clip_start_peer_a_bar_error_ms"] = (grid_error_ms(peer_a.captureAppSessionState(), micros[0],
                                                                      QUANTUM) if micros and micros[0] > changed_at
                                                        else None)
            reached = next((m for m, bpm in tempo_seen if bpm is not None and abs(bpm - args.to) <= 0.05), None)
            result["tempo_followed_after_ms"] = None if reached is None else (reached - changed_at) / 1000
            result["tempo_left_after_reaching"] = reached is not None and any(
                bpm is None or abs(bpm - args.to) > 0.05 for m, bpm in tempo_seen if m >= reached)
            if cli is not None:
                cli.terminate()
                cli.wait(timeout=10)
                beats = [json.loads(line) for line in cli_lines if '"event": "tick"' in line]
                result["cli_beats"] = [
                    {"bar": b["bar"], "beat": b["beat"], "tempo_bpm": b["tempo_bpm"], "lock": b["lock"],
                     "after_change_ms": (frames.micros(round(b["time"] * RATE)) - changed_at) / 1000,
                     "error_ms": grid_error_ms(truth(frames.micros(round(b["time"] * RATE))),
                                               frames.micros(round(b["time"] * RATE)),
                                               QUANTUM if b["beat"] == 1 else 1.0)}
                    for b in beats]
                result["cli_stderr"] = cli.stderr.read()[-2000:]
            result["peers_seen_by_a"] = peer_a.numPeers()
            peer_a.enabled = peer_b.enabled = False
    finally:
        if cli is not None and cli.poll() is None:
            cli.kill()
        stop(jackd)
    print(json.dumps(result))
    return 0


def bridge_main(args: argparse.Namespace) -> int:
    """`cadenza bridge --sync link` as a user runs it, peers A and B at ``--tempo``: a prompt, and
    where the clip's first note falls on B's timeline (ms from the nearest bar line)."""
    loopback_up()
    import link

    from tests.bridge.jack_rig import Recorder

    result: dict = {"interfaces": interfaces()}
    jackd, _ = start_jackd(not args.asynchronous, args.realtime)
    bridge = None
    try:
        peer_a, peer_b = link.Link(args.tempo), link.Link(args.tempo)
        peer_a.enabled = peer_b.enabled = True
        wait(lambda: peer_a.numPeers() >= 1 and peer_b.numPeers() >= 1, JOIN_SECONDS, "peers A and B to meet")
        recorder = Recorder(["out"])
        recorder.client.deactivate()
        frames = FrameClock(recorder, peer_a.clock())
        recorder.client.activate()
        bridge = subprocess.Popen([sys.executable, "-m", "bridge.cli", "bridge", "--sync", "link", "--out",
                                   "cadenza-recorder:out", "--session", f"link-{uuid.uuid4().hex[:8]}"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  bufsize=1, cwd=ROOT)
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(iter(bridge.stdout.readline, "")), daemon=True).start()

        def line_with(text: str) -> str | None:
            return next((line for line in lines if text in line), None)

        wait(lambda: line_with("bridge: clock from") or bridge.poll() is not None, 180, "the bridge to start")
        bridge.stdin.write("g 2 bars of pop with drums and bass, A minor\n")
        bridge.stdin.flush()
        wait(lambda: line_with("lands on bar") or bridge.poll() is not None, 180, "the clip")
        landed_at = peer_a.clock().micros()
        wait(lambda: any(data[0] & 0xF0 == 0x90 for _, data in recorder.events["out"]), 20, "the first note")
        time.sleep(0.2)
        bridge.stdin.write("q\n")
        bridge.stdin.flush()
        bridge.wait(timeout=60)
        frames.stop()
        recorder.close()
        onsets = [frame for frame, data in recorder.events["out"] if data[0] & 0xF0 == 0x90 and data[2]]
        first = frames.micros(onsets[0])
        session = peer_b.captureAppSessionState()
        result.update({
            "lines": [line for line in lines if "clip" in line or "bridge:" in line],
            "first_note_bar_error_ms": grid_error_ms(session, first, QUANTUM),
            "first_note_after_landed_ms": (first - landed_at) / 1000,
            "bar_ms": QUANTUM * 60000.0 / session.tempo(),
            "tempo_in_line": args.tempo,
            "notes": len(onsets),
            "stderr": bridge.stderr.read()[-2000:],
        })
    finally:
        if bridge is not None and bridge.poll() is None:
            bridge.kill()
        stop(jackd)
    print(json.dumps(result))
    return 0


def start_stop_main(args: argparse.Namespace) -> int:
    """Link's start/stop sync: peers A and B share start/stop, Cadenza follows with ``start_stop``
    and a clip queued while stopped. B starts the session at a bar line half a second ahead, lets it
    play ``--bars`` bars and stops it. Prints what Cadenza did before, at and after (JSON)."""
    loopback_up()
    import link

    from bridge.clock import Kind, Transport
    from bridge.link_clock import LinkFollower, join_session
    from bridge.live import LiveSession, QueueClip
    from bridge.ports import JackPorts
    from engine.music.theory import Meter
    from tests.bridge.jack_rig import Recorder

    result: dict = {"interfaces": interfaces()}
    jackd, _ = start_jackd(not args.asynchronous, args.realtime)
    try:
        peer_a, peer_b = link.Link(args.tempo), link.Link(args.tempo)
        for peer in (peer_a, peer_b):
            peer.startStopSyncEnabled = True
            peer.enabled = True
        wait(lambda: peer_a.numPeers() >= 1 and peer_b.numPeers() >= 1, JOIN_SECONDS, "peers A and B to meet")
        recorder = Recorder(["out"])
        recorder.client.deactivate()
        frames = FrameClock(recorder, peer_a.clock())
        recorder.client.activate()
        follower = LinkFollower(Meter(4, 4), join_session(97.0), start_stop=True)
        session = LiveSession(follower=follower)
        clock = peer_a.clock()
        with JackPorts(session.process, connect_out=["cadenza-recorder:out"]) as ports:
            follower.use_port(ports)
            wait(lambda: follower.peers >= 2 and follower.tempo_bpm == args.tempo, JOIN_SECONDS, "Cadenza to join")
            time.sleep(1.0)  # the session stopped: Cadenza must not run
            result["while_stopped"] = {"transport": session.state.transport.value, "ticks": follower.ticks}
            session.request(QueueClip(make_quarters(args.bars + 2)))  # longer than the run: the stop cuts it
            state = peer_b.captureAppSessionState()
            now = clock.micros()
            bar = math.ceil((state.beatAtTime(now + 500_000, QUANTUM)) / QUANTUM) * QUANTUM
            start_at = state.timeAtBeat(bar, QUANTUM)  # B starts on a bar line, as Live does
            state.setIsPlaying(True, start_at)
            peer_b.commitAppSessionState(state)
            # B stops a fifth of a second into the bar after ``--bars`` bars
            stop_at = start_at + round(args.bars * QUANTUM * 60e6 / args.tempo) + 200_000
            wait(lambda: clock.micros() > stop_at - 300_000, 30, "the session to play")
            state = peer_b.captureAppSessionState()
            state.setIsPlaying(False, stop_at)
            peer_b.commitAppSessionState(state)
            wait(lambda: clock.micros() > stop_at + 1_000_000, 10, "a second after the stop")
            result["after_stop"] = {"transport": session.state.transport.value}
            result["xruns"], result["errors"] = ports.xruns, [repr(e) for e in ports.errors]
        frames.stop()
        recorder.close()
        kinds = [(event.kind.value, event.position, frames.micros(round(event.time * RATE)))
                 for event in session.clock_events if event.kind is not Kind.TICK]
        ons = [frames.micros(frame) for frame, data in recorder.events["out"] if data[0] & 0xF0 == 0x90 and data[2]]
        offs = [frames.micros(frame) for frame, data in recorder.events["out"] if data[0] & 0xF0 == 0x80]
        result.update({
            "events": [[kind, position, (at - start_at) / 1000] for kind, position, at in kinds],
            "first_note_after_start_ms": (ons[0] - start_at) / 1000 if ons else None,
            "notes": len(ons),
            "notes_after_stop": sum(m > stop_at + PERIOD / RATE * 1e6 for m in ons),
            "last_off_after_stop_ms": (max(offs) - stop_at) / 1000 if offs else None,
            "bar_ms": QUANTUM * 60000.0 / args.tempo,
            "stopped": session.state.transport is Transport.STOPPED,
        })
        peer_a.enabled = peer_b.enabled = False
    finally:
        stop(jackd)
    print(json.dumps(result))
    return 0


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc) -> None:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
