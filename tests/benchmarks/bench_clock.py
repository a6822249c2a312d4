"""Benchmark: following jack_midi_clock and an Ableton Link session on a JACK dummy server,
on synchronous (-S) and asynchronous JACK. Prints, per JACK mode, tempo and port kind:

- tempo error two beats and one bar after Start (BPM),
- lock time: from Start until the estimate is within 0.05 BPM for good (beats and ms),
- phase error of a played clip's note onsets against the clock ticks they belong to (ms:
  mean, RMS, worst), as an independent JACK client records them.

Port kinds: ``jack`` (JACK-Client, frame-exact) and ``jack-rtmidi`` (python-rtmidi on JACK, stamps
at callback time and sends from a thread) following MIDI clock, and ``link``: two Link peers in a
network namespace (tests/bridge/link_rig.py), one changing 120 -> 150 BPM mid-clip; printed are when
Cadenza's tempo followed, the clip's start against the session's bar line, and the note onsets'
and `cadenza clock --sync link` beats' phase error against the changing peer. Run from the
worktree root (as root, or where ``unshare -rn`` is allowed, for ``link``):

    python tests/benchmarks/bench_clock.py [--modes sync async] [--load N] [--seconds S]
                                           [--bpm 90 120 137.5 174] [--kinds jack jack-rtmidi link]

JACK modes (``--modes``, default all three): ``sync`` (-S), ``async`` (no -S, real-time: jackd's
default, needs root or an rtprio limit) and ``async-nort`` (no -S, ``--no-realtime``). Asynchronous
JACK without real-time scheduling on an overloaded machine skips late clients' periods (lost
ticks, at the source too: jack_midi_clock drops the ticks due in its skipped periods) and lets the
transport slip a period when the server is late. ``--load N`` runs N busy processes beside it
(bounded: they end with the run). ``--seconds S`` keeps each ``jack`` case rolling S seconds and
adds, over every beat from two beats after Start on: the worst tempo error, beats not locked, the
tempo a clip would be written at, ticks whose position differs from the transport's, and note
onsets against the frame at which the transport reached their position (the truth is the
transport frame of each period as the rig's own clients read it); for ``link`` it sets the clip's
length (S seconds at 120 BPM). The issue's figures: ``--load 2 --seconds 60 --kinds jack link``.
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from bridge.live import LiveSession, QueueClip  # noqa: E402
from bridge.ports import JackPorts, RtMidiPorts  # noqa: E402
from engine.music.theory import Meter  # noqa: E402
from tests.bridge.jack_rig import (  # noqa: E402
    RATE,
    ClockRig,
    Probe,
    Recorder,
    TimebaseMaster,
    cpu_load,
    make_clip,
)

MODES = {  # name: (synchronous, real-time)
    "sync": (True, False),  # jackd -S --no-realtime: the server waits for every client
    "async": (False, True),  # jackd -R: asynchronous, real-time (jackd's default; needs root or an rtprio limit)
    "async-nort": (False, False),  # jackd --no-realtime: asynchronous, ordinary scheduling
}
MODE_TEXT = {"sync": "sync (-S)", "async": "async, real-time (-R)", "async-nort": "async, --no-realtime"}


def start_jackd(sync: bool, realtime: bool = False) -> tuple[subprocess.Popen, str]:
    name = f"cadenza-bench-{uuid.uuid4().hex[:6]}"
    args = ["jackd", "-n", name, "-R" if realtime else "--no-realtime", *(["-S"] if sync else []),
            "-d", "dummy", "-r", str(RATE),
            "-p", "256"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "JACK_NO_AUDIO_RESERVATION": "1"})
    os.environ["JACK_DEFAULT_SERVER"] = name
    deadline = time.monotonic() + 10
    while subprocess.run(["jack_lsp", "-s", name], capture_output=True).returncode != 0:
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit("jackd did not start")
        time.sleep(0.1)
    return process, name


def open_rig(server: str) -> ClockRig:
    master = TimebaseMaster()
    recorder = Recorder(["clock", "out"])
    clock = subprocess.Popen(["jack_midi_clock", "-d", "0", "cadenza-recorder:clock"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rig = ClockRig(server, master, clock, recorder)
    rig.wait(lambda: bool(recorder.client.get_all_connections("cadenza-recorder:clock")), 10, "jack_midi_clock")
    rig.clock_port = recorder.client.get_all_connections("cadenza-recorder:clock")[0].name
    return rig


def close_rig(rig: ClockRig) -> None:
    rig.master.close()
    rig.recorder.close()
    rig.clock.send_signal(signal.SIGINT)  # jack_midi_clock's clean exit
    rig.clock.wait(timeout=5)


def phase_errors(rig: ClockRig, score, bpm: float, start_position: int) -> tuple[list[float], int]:
    """Onset minus due time (ms) for each note whose two surrounding ticks were recorded."""
    frames_per_tick = RATE * 60.0 / (24 * bpm)
    clock = rig.recorder.events["clock"]
    first = next((i for i, (_, data) in enumerate(clock) if data == b"\xfa"), None)
    if first is None:
        return [], 0  # the recorder itself lost the Start (a skipped cycle): no reference for the notes
    ticks: dict[int, int] = {}
    index, previous = -1, None
    for frame, data in clock[first:]:
        if data == b"\xf8":
            index += 1 if previous is None else max(1, round((frame - previous) / frames_per_tick))
            ticks[index], previous = frame, frame
    def due(position: float) -> float | None:
        whole = math.floor(position)
        if whole not in ticks or whole + 1 not in ticks:
            return None
        return ticks[whole] + (position - whole) * (ticks[whole + 1] - ticks[whole])

    return _onset_errors(rig, score, start_position, due, 12 * frames_per_tick)


def transport_errors(rig: ClockRig, score, bpm: float, start_position: int) -> tuple[list[float], int]:
    """Onset minus due time (ms) for each note, the due time being the frame at which the JACK
    transport (as the rig's clients read it) reached the note's position: the issue's truth."""
    frames_per_tick = RATE * 60.0 / (24 * bpm)

    def due(position: float) -> float | None:
        try:
            return rig.frame_time_of(round(position * frames_per_tick))
        except ValueError:
            return None

    errors, _ = _onset_errors(rig, score, start_position, due, 12 * frames_per_tick)
    return errors, sum(1 for track in score.tracks for _ in track.notes) - len(errors)


def _onset_errors(rig: ClockRig, score, start_position: int, due_of: Callable[[float], float | None],
                  within: float) -> tuple[list[float], int]:
    """Onset minus due time (ms) for each note whose due frame ``due_of`` knows (its position in MIDI
    clock ticks), matched to the nearest recorded note-on of its pitch no more than ``within`` frames
    away (half a beat: a note the recorder lost in a skipped period was matched to one of its pitch
    up to 3 s away, a "worst" of 1.3-3.2 s; the triplets and 32nds, whose pitch recurs sooner, can
    still match a neighbour); and how many note-ons matched none."""
    onsets = sorted((frame, data[1]) for frame, data in rig.recorder.events["out"]
                    if data[0] & 0xF0 == 0x90 and data[2] > 0)
    errors = []
    for track in score.tracks:
        for note in track.notes:
            due = due_of(start_position + note.time * 24 / score.ticks_per_quarter)
            candidates = [f for f, p in onsets if p == note.pitch and due is not None and abs(f - due) <= within]
            if due is not None and candidates:
                frame = min(candidates, key=lambda f: abs(f - due))
                onsets.remove((frame, note.pitch))
                errors.append((frame - due) / RATE * 1000)
    return errors, len(onsets)


def rtmidi_child() -> int:
    """The rtmidi side in its own process: python-rtmidi bundles its own libjack, which cannot
    share a process with JACK-Client's (the system libjack). Prints the probe's states as JSON."""
    import json

    session = LiveSession(Meter(4, 4))
    probe = Probe(session)
    session.request(QueueClip(make_clip(), bar=2))
    clock_port = sys.argv[sys.argv.index("--child") + 1]
    with RtMidiPorts(probe, "jack-rtmidi", connect_in=clock_port, connect_out="cadenza-recorder:out"):
        print("ready", flush=True)
        deadline = time.monotonic() + 60
        while not (session.state.position >= 4 * 96 and session.state.transport.value == "stopped"):
            if time.monotonic() > deadline:
                return 1
            time.sleep(0.01)
    seen = {p: [s.tempo_bpm, s.last_tick_time] for p, s in probe.seen.items()}
    print(json.dumps({"seen": seen, "missed": session.follower.missed}), flush=True)
    return 0


class _Seen:
    def __init__(self, tempo_bpm, last_tick_time) -> None:
        self.tempo_bpm, self.last_tick_time = tempo_bpm, last_tick_time


def run_case(rig: ClockRig, kind: str, bpm: float, seconds: float = 0.0) -> dict:
    import json

    for events in rig.recorder.events.values():
        events.clear()
    rig.recorder.cycles.clear()  # transport frames repeat from run to run: only this run's map them
    rig.master.cycles.clear()
    rig._sorted_key = ()
    score = make_clip()
    rig.master.set_tempo(bpm)
    if kind == "jack":
        session = LiveSession(Meter(4, 4))
        probe = Probe(session)
        session.request(QueueClip(score, bar=2))
        ports = JackPorts(probe, connect_in=[rig.clock_port], connect_out=["cadenza-recorder:out"])
        try:
            rig.master.start_from(0)
            until = max(4 * 96, int(seconds * bpm / 60) * 24)
            rig.wait(lambda: session.state.position >= until, timeout=30 + 3 * seconds, what=f"position {until}")
            rig.master.stop()
            # the Stop itself can be lost in a skipped period: then the clock is lost instead
            rig.wait(lambda: session.state.transport.value in ("stopped", "lost"), what="Stop")
            time.sleep(0.05)
        finally:
            ports.close()
        seen, missed, xruns = probe.seen, session.follower.missed, f"{ports.xruns}/{ports.irregular_periods}"
        beats: dict[int, object] = {}
        for position in sorted(seen):
            if position // 24 >= 2:
                beats.setdefault(position // 24, seen[position])
        run = {"beats": len(beats), "worst_run": max(abs(s.tempo_bpm - bpm) for s in beats.values()),
               "unlocked": sum(s.lock.value != "locked" for s in beats.values()),
               "written": seen[max(seen)].locked_bpm if seen else None,  # at the run's last tick
               "off": sum(p not in ticks for p, s in seen.items()
                          if (ticks := rig.transport_ticks_at(s.last_tick_time))),
               "seen": sum(bool(rig.transport_ticks_at(s.last_tick_time)) for s in seen.values()),
               "skipped": ports.skipped_periods, "repeated": ports.repeated_periods,
               "duplicates": session.follower.duplicates, "stale": session.follower.stale,
               "off_grid": session.follower.off_grid, "early": session.follower.early}
        run["transport"], run["not_recorded"] = transport_errors(rig, score, bpm, 96)
    else:
        child = subprocess.Popen([sys.executable, __file__, "--child", rig.clock_port], stdout=subprocess.PIPE,
                                 text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        rig.master.start_from(0)
        rig.wait(lambda: len(rig.clock_ticks_after(0)) > 4 * 96 + 2, timeout=30, what="bar 5")
        rig.master.stop()
        report = json.loads(child.stdout.readline())
        child.wait(timeout=10)
        seen = {int(p): _Seen(*v) for p, v in report["seen"].items()}
        missed, xruns = report["missed"], None
        run = None
    errors = {p: abs(seen[p].tempo_bpm - bpm) for p in sorted(seen) if seen[p].tempo_bpm is not None}
    unlocked = [p for p, e in errors.items() if e > 0.05]
    lock = (max(unlocked) + 1) if unlocked else min(errors)
    lock_ms = None
    if lock in seen and 0 in seen:
        lock_ms = (seen[lock].last_tick_time - seen[0].last_tick_time) * 1000
    phase, unmatched = phase_errors(rig, score, bpm, 96)
    n = len(phase)
    return {
        "kind": kind, "bpm": bpm,
        "err2": errors.get(48), "err_bar": errors.get(96), "lock_beats": lock / 24, "lock_ms": lock_ms,
        "mean": sum(phase) / n if n else float("nan"),
        "rms": math.sqrt(sum(e * e for e in phase) / n) if n else float("nan"),
        "worst": max(map(abs, phase)) if n else float("nan"), "notes": n, "unmatched": unmatched,
        "missed": missed, "xruns": xruns, "run": run,
    }


def run_jack(args: argparse.Namespace, mode: str) -> None:
    """The MIDI clock cases on one JACK server in ``mode`` (see `MODES`)."""
    sync, realtime = MODES[mode]
    jackd, server = start_jackd(sync=sync, realtime=realtime)
    load = cpu_load(args.load, seconds=3600)
    load.__enter__()
    print(f"\njackd {MODE_TEXT[mode]}, dummy, {RATE} Hz, 256 frames; following jack_midi_clock; "
          f"{args.load} busy processes beside it; load average {os.getloadavg()[0]:.2f}")
    print(f"{'ports':<12} {'BPM':>6} {'err@2beats':>11} {'err@1bar':>9} {'lock':>14} "
          f"{'phase mean':>11} {'RMS':>8} {'worst':>8} {'notes':>6} {'lost':>5} {'xruns/irregular':>16}")
    try:
        rig = open_rig(server)
        try:
            for kind in args.kinds:
                for bpm in args.bpm:
                    r = run_case(rig, kind, bpm, args.seconds)
                    err2 = "n/a" if r["err2"] is None else f"{r['err2']:.4f}"
                    err_bar = "n/a" if r["err_bar"] is None else f"{r['err_bar']:.4f}"
                    lock_ms = "n/a" if r["lock_ms"] is None else f"{r['lock_ms']:.0f} ms"
                    print(f"{kind:<12} {bpm:>6g} {err2:>11} {err_bar:>9} "
                          f"{r['lock_beats']:>5.2f} b {lock_ms:>6} {r['mean']:>+8.3f} ms {r['rms']:>5.3f} ms "
                          f"{r['worst']:>5.3f} ms {r['notes']:>6} {r['missed']:>5} {str(r['xruns']):>16}", flush=True)
                    if r["run"] is not None:
                        run = r["run"]
                        print(f"{'':<12} {bpm:>6g} over {run['beats']} beats from beat 3 on: worst tempo error "
                              f"{run['worst_run']:.4f} BPM, beats not locked {run['unlocked']}, written "
                              f"{run['written']}, positions off the transport {run['off']} of {run['seen']} known "
                              f"(load average {os.getloadavg()[0]:.2f})", flush=True)
                        t = run["transport"]
                        if t:
                            print(f"{'':<12} {bpm:>6g} periods JACK skipped Cadenza in {run['skipped']}, ran it "
                                  f"twice in {run['repeated']}; onsets vs the transport frame of their position: "
                                  f"mean {sum(t) / len(t):+.3f} ms, worst {max(map(abs, t)):.3f} ms over "
                                  f"{len(t)} notes ({run['not_recorded']} not in the recording within half a "
                                  f"beat)", flush=True)
                        print(f"{'':<12} {bpm:>6g} ticks handed to Cadenza again from a stale buffer {run['stale']}, "
                              f"stamped off the grid {run['off_grid']}, stamped whole periods early "
                              f"{run['early']}", flush=True)
        finally:
            close_rig(rig)
    finally:
        load.__exit__(None, None, None)
        jackd.terminate()
        jackd.wait(timeout=10)


def run_link(args: argparse.Namespace, mode: str) -> None:
    """Ableton Link in a network namespace (tests/bridge/link_rig.py): two peers, B changes tempo."""
    import json

    from tests.bridge.link_rig import namespace_command

    bars = max(4, int(args.seconds * 120 / 60 / 4)) if args.seconds else 8
    command = [sys.executable, str(ROOT / "tests/bridge/link_rig.py"), "--tempo", "120", "--to", "150",
               "--bars", str(bars), "--change-bar", str(bars // 2), "--load", str(args.load),
               *([] if MODES[mode][0] else ["--async"]), *(["--realtime"] if MODES[mode][1] else [])]
    done = subprocess.run(namespace_command(command), capture_output=True, text=True, timeout=120 + 2 * args.seconds,
                          cwd=ROOT)
    mode = MODE_TEXT[mode]
    if done.returncode != 0:
        print(f"\nLink, jackd {mode}: the rig failed: {done.stderr[-1500:]}")
        return
    r = json.loads(done.stdout.strip().splitlines()[-1])
    beat = r["beat_ms_after"]
    onsets = [e for a, e in zip(r["onset_after_change_ms"], r["onset_errors_ms"], strict=True) if not 0 <= a < beat]
    cli = [b["error_ms"] for b in r.get("cli_beats", []) if not 0 <= b["after_change_ms"] < beat]
    n = len(onsets)
    print(f"\nLink, jackd {mode}, dummy, {RATE} Hz, 256 frames; peers A and B at 120 BPM in a network namespace, "
          f"B -> 150 BPM in bar {bars // 2 + 1} of a {bars}-bar clip of quarter notes; {args.load} busy processes")
    print(f"  tempo followed {r['tempo_followed_after_ms']:.1f} ms after B's change (a beat: {beat:.0f} ms); "
          f"clip start vs the session's bar line {r['clip_start_bar_error_ms']:+.3f} ms; notes {r['notes']} "
          f"of {r['notes_written']}; xruns {r['xruns']}")
    if n:
        print(f"  note onsets vs B's beat grid (the beat of the change not judged): mean "
              f"{sum(onsets) / n:+.3f} ms, RMS {math.sqrt(sum(e * e for e in onsets) / n):.3f} ms, "
              f"worst {max(map(abs, onsets)):.3f} ms over {n} notes")
    if cli:
        print(f"  `cadenza clock --sync link --json` beat times vs B: worst {max(map(abs, cli)):.3f} ms over "
              f"{len(cli)} beats; tempos {sorted({b['tempo_bpm'] for b in r['cli_beats']})}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES),
                        help="JACK modes: sync (-S), async (real-time, -R), async-nort (--no-realtime); default all")
    parser.add_argument("--async", dest="async_mode", action="store_true", help="only async JACK (--modes async)")
    parser.add_argument("--bpm", type=float, nargs="+", default=[90.0, 120.0, 137.5, 174.0])
    parser.add_argument("--kinds", nargs="+", default=["jack", "jack-rtmidi", "link"],
                        choices=["jack", "jack-rtmidi", "link"])
    parser.add_argument("--load", type=int, default=0, metavar="N", help="busy processes beside the run (default 0)")
    parser.add_argument("--seconds", type=float, default=0.0, metavar="S",
                        help="roll each jack case S seconds and judge every beat (default: 4 bars)")
    args = parser.parse_args()
    modes = ["async"] if args.async_mode else args.modes
    midi = [kind for kind in args.kinds if kind != "link"]
    if len(modes) > 1:
        # One process per JACK mode: jack2 tearing down a client on a busy asynchronous server has
        # crashed a run (segfault in Client.deactivate); then only that mode's last lines are lost.
        options = [arg for arg in sys.argv[1:] if arg != "--async"]
        if "--modes" in options:
            index = options.index("--modes")
            end = next((i for i in range(index + 1, len(options)) if options[i].startswith("--")), len(options))
            del options[index:end]
        for mode in modes:
            done = subprocess.run([sys.executable, __file__, *options, "--modes", mode],
                                  env={**os.environ, "CADENZA_BENCH_PART": "1"})
            if done.returncode != 0:
                print(f"\n(the {mode} run exited with code {done.returncode})", flush=True)
        print(LEGEND)
        return 0
    for mode in modes:
        if midi:
            run_jack(argparse.Namespace(**{**vars(args), "kinds": midi}), mode)
        if "link" in args.kinds:
            run_link(args, mode)
    if not os.environ.get("CADENZA_BENCH_PART"):
        print(LEGEND)
    return 0


LEGEND = ("\nerr: |estimate - set tempo| in BPM; lock: from Start until within 0.05 BPM for good; "
          "phase: onset - due on the recorded clock ticks; lost: ticks the follower inferred lost;\n"
          "irregular: periods after which Cadenza's JACK client saw some skipped (async JACK under load);\n"
          "positions and onsets 'vs the transport': against the transport frame the rig's clients read for "
          "each period (to within their readings, see tests/bridge/jack_rig.py);\n"
          "stale / off the grid / early: ticks the follower placed on jack_midi_clock's grid rather than "
          "count (see bridge/clock.py, ClockFollower._grid_position)")


if __name__ == "__main__":
    sys.exit(rtmidi_child() if "--child" in sys.argv else main())
