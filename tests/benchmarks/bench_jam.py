"""Benchmark: the live jam's headroom on a JACK dummy server with jack_midi_clock and a real engine.

For each tempo and phrase length a jam runs (`bridge.jam.Jam`, as `cadenza jam` runs it) while a
"DAW" client plays four sixteenths into Cadenza In at the start of every phrase. Printed per case,
over the phrases made by Continue (phrase 1 comes from the prompt and is left out):

- latency: how long the engine took to answer (s; min / median / max),
- headroom: how long before its bar line each phrase was queued in the I/O thread (s; min / median),
  against the goal of one beat,
- heard: the share of each phrase captured before its cut (the jam asks for the next phrase at the
  cut: latency plus a beat ahead of the bar line), i.e. how much of what was played it answers,
- late: phrases dropped because their bar line's tick had come (they play nothing),
- xruns / irregular periods seen by Cadenza's JACK client during the case.

Run from the worktree root (about 3 minutes; an idle machine gives the fair figure):

    python tests/benchmarks/bench_jam.py [--bpm 120 180] [--bars 1 2 4] [--phrases 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from bridge.client import EngineClient, EngineProcess  # noqa: E402
from bridge.jam import Jam, JamLive  # noqa: E402
from bridge.live import LiveSession  # noqa: E402
from bridge.ports import JackPorts  # noqa: E402
from engine.music.theory import Meter  # noqa: E402
from tests.benchmarks.bench_clock import close_rig, open_rig, start_jackd  # noqa: E402
from tests.bridge.jack_rig import Injector  # noqa: E402

PROMPT = "mellow jazz trio with piano, upright bass and drums"
PLAYED = [(0, 72), (6, 74), (12, 76), (18, 77)]  # (clock ticks into each phrase, pitch)


class Daw:
    """Plays PLAYED at the start of every phrase of the current jam, counting the clock's ticks."""

    def __init__(self) -> None:
        self.jam: Jam | None = None
        self.next: int | None = None

    def __call__(self, first, frames, incoming):
        out = []
        for offset, data in incoming:
            if data == b"\xfa":
                self.next = 0
            elif data == b"\xf8" and self.next is not None:
                position, self.next = self.next, self.next + 1
                plan = self.jam.plan if self.jam else None
                k = plan.phrase_at(position) if plan else None
                if k is None:
                    continue
                into = position - plan.start(k)
                for at, pitch in PLAYED:
                    if into == at:
                        out.append((offset, bytes([0x90, pitch, 96])))
                    elif into == at + 4:
                        out.append((offset, bytes([0x80, pitch, 0])))
        return out


def run_case(rig, daw: Daw, client: EngineClient, bpm: float, bars: int, phrases: int) -> dict:
    live = JamLive(LiveSession(Meter(4, 4)))
    ports = JackPorts(live.process, connect_in=[rig.clock_port, "cadenza-daw:out"],
                      connect_out=["cadenza-recorder:out"])
    lines: list[str] = []
    try:
        jam = Jam(live, client, PROMPT, bars, f"bench-{bpm:g}-{bars}-{time.monotonic_ns()}", say=lines.append,
                  phrases=phrases)
        daw.jam = jam
        rig.master.set_tempo(bpm)
        rig.master.start_from(0)
        reports = jam.run()
        rig.master.stop()
        rig.wait(lambda: live.session.state.transport.value == "stopped", what="Stop")
    finally:
        ports.close()
        daw.jam = None
    later = reports[1:]
    plan = jam.plan
    beat_s = 60.0 / bpm
    heard = [min(1.0, (plan.phrase_ticks - r.lead_ticks) / plan.phrase_ticks) for r in reports[:-1]]
    on_time = [r for r in later if r.on_time]
    return {
        "bpm": bpm, "bars": bars, "phrase_s": bars * 4 * beat_s, "beat_s": beat_s, "n": len(later),
        "latency": [r.latency_s for r in later], "headroom": [r.headroom_s for r in on_time],
        "late": len(later) - len(on_time), "heard": heard, "xruns": ports.xruns,
        "irregular": ports.irregular_periods, "errors": len(ports.errors), "lines": lines,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bpm", type=float, nargs="+", default=[120.0, 180.0])
    parser.add_argument("--bars", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--phrases", type=int, default=5, help="phrases per case (the first from the prompt)")
    parser.add_argument("--verbose", action="store_true", help="print the jam's own lines too")
    args = parser.parse_args()
    jackd, server = start_jackd(sync=True)
    state = tempfile.mkdtemp(prefix="cadenza-bench-jam-")
    print(f"jackd sync (-S), dummy, 48000 Hz, 256 frames; engine: cadenza serve (state {state}); "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'BPM':>5} {'bars':>4} {'phrase':>7} {'n':>3} {'latency min/med/max':>22} "
          f"{'headroom min/med':>17} {'>=1 beat':>8} {'late':>4} {'heard':>6} {'xruns/irregular':>16}")
    try:
        rig = open_rig(server)
        daw = Daw()
        sender = Injector("cadenza-daw", daw)
        rig.connect(rig.clock_port, "cadenza-daw:in")
        try:
            with EngineProcess("--state", state) as engine, EngineClient(engine.target) as client:
                client.check()
                client.describe("warm up")  # loads the text model, as a long-running engine has
                for bpm in args.bpm:
                    for bars in args.bars:
                        r = run_case(rig, daw, client, bpm, bars, args.phrases)
                        lat, head = r["latency"], r["headroom"]
                        lat_text = (f"{min(lat):.3f}/{statistics.median(lat):.3f}/{max(lat):.3f} s"
                                    if lat else "n/a")
                        head_text = f"{min(head):.3f}/{statistics.median(head):.3f} s" if head else "n/a"
                        goal = "yes" if head and min(head) >= r["beat_s"] and not r["late"] else "NO"
                        print(f"{bpm:>5g} {bars:>4} {r['phrase_s']:>6.2f}s {r['n']:>3} {lat_text:>22} "
                              f"{head_text:>17} {goal:>8} {r['late']:>4} {statistics.mean(r['heard']):>6.0%} "
                              f"{r['xruns']:>8}/{r['irregular']:<7}", flush=True)
                        if args.verbose:
                            print("    " + "\n    ".join(r["lines"]))
                        if r["errors"]:
                            print(f"    {r['errors']} errors in the MIDI thread")
        finally:
            sender.close()
            close_rig(rig)
    finally:
        jackd.terminate()
        jackd.wait(timeout=10)
    print("latency: Continue RPC round trip; headroom: bar line minus when the phrase reached the I/O thread; "
          ">=1 beat: every phrase on time and ready a beat early (the goal);\nheard: share of a phrase captured "
          "before the jam asked for the next one; xruns: JACK's xrun callbacks, irregular: periods Cadenza's "
          "client saw skipped or repeated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
