"""Following Debian's jack_midi_clock on asynchronous JACK (no -S) with the CPU loaded.

This is JACK as users start it (`jackd --no-realtime -d dummy`, what the README and the port
error suggest) on a machine that is busy, as it is while a DAW renders: two busy processes
run beside every test. The server then skips the cycles of clients that are late (their ticks
are lost) and, when it is late itself, lets the transport slip a period (every later tick is
that much late). The truth is the JACK transport: the tempo the timebase master sets and, for
positions, the transport frame of the cycle each tick was sent in (logged by the rig's own
clients), never a monitor client's count, which loses ticks under the same load.
"""
from __future__ import annotations

import time

import pytest

from bridge.clock import CLOCKS_PER_QUARTER, Lock
from bridge.live import LiveSession
from bridge.ports import JackPorts
from engine.music.theory import Meter
from tests.bridge.jack_rig import Probe, load_average

pytestmark = pytest.mark.jack

SECONDS = 20.0  # per tempo; bench_clock.py --async --load 3 --seconds 60 runs a minute


def follow(rig) -> tuple[LiveSession, Probe, JackPorts]:
    session = LiveSession(Meter(4, 4))
    probe = Probe(session)
    ports = JackPorts(probe, connect_in=[rig.clock_port])
    rig.extra.append(ports)
    return session, probe, ports


def per_beat(probe: Probe, first_beat: int = 2) -> dict[int, object]:
    """The follower's state at the first tick it saw in each beat from ``first_beat`` on (0-based
    beats: beat 2 is two beats after Start). A beat whose first ticks were lost is judged at the
    first tick that arrived in it."""
    beats: dict[int, object] = {}
    for position in sorted(probe.seen):
        beat = position // CLOCKS_PER_QUARTER
        if beat >= first_beat and beat not in beats:
            beats[beat] = probe.seen[position]
    return beats


def roll(rig, bpm: float) -> tuple[LiveSession, Probe, JackPorts]:
    """Follow the clock rolled from bar 1 at ``bpm`` for `SECONDS` of wall time."""
    session, probe, ports = follow(rig)
    rig.master.set_tempo(bpm)
    rig.master.start_from(0)
    time.sleep(SECONDS)  # wall time: on an overloaded machine the transport itself rolls slower
    rig.master.stop()
    time.sleep(0.5)  # (the Stop itself may be lost with a skipped cycle: not waited for)
    ports.close()
    return session, probe, ports


@pytest.mark.parametrize("bpm", [90.0, 120.0, 137.5, 174.0])
def test_tempo_within_0_05_bpm_and_locked_at_every_beat_under_load(clock_rig_async, loaded_cpu, bpm):
    session, probe, ports = roll(clock_rig_async, bpm)
    beats = per_beat(probe)
    errors = {beat: abs(state.tempo_bpm - bpm) for beat, state in beats.items()}
    unlocked = [beat for beat, state in beats.items() if state.lock is not Lock.LOCKED]
    worst = max(errors, key=errors.get) if errors else None
    follower = session.follower
    print(f"async JACK, load average {load_average():.1f}, {bpm} BPM: worst tempo error "
          f"{errors.get(worst, float('nan')):.4f} BPM (beat {worst}) over {len(beats)} beats, not locked at "
          f"{len(unlocked)}; written {session.state.locked_bpm}; ticks seen {follower.ticks}, inferred lost "
          f"{follower.missed}, steps {follower.estimator.steps}, tempo changes {follower.estimator.changes}; "
          f"xruns {ports.xruns}, irregular periods {ports.irregular_periods}")
    assert len(beats) >= 8
    assert errors[worst] <= 0.05
    assert not unlocked
    assert session.state.locked_bpm == bpm  # written exactly: 120 gives 120.0, not 119.97
    assert not ports.errors


@pytest.mark.xfail(reason="not met under heavy load: ticks jack_midi_clock never sent right after Start (its grid "
                          "starts where it saw the transport start) and the rig's clients disagreeing by a period "
                          "on a cycle's transport frame leave the run's first positions (and the truth) a tick or "
                          "two uncertain; later losses and slips are decoded exactly", strict=False)
def test_positions_equal_the_transports_under_load(clock_rig_async, loaded_cpu):
    rig = clock_rig_async
    session, probe, ports = roll(rig, 120.0)
    truth = {position: rig.transport_tick_at(state.last_tick_time) for position, state in probe.seen.items()}
    known = {position: tick for position, tick in truth.items() if tick is not None}
    wrong = [(position, tick) for position, tick in sorted(known.items()) if tick != position]
    print(f"async JACK, load average {load_average():.1f}: positions off the transport {len(wrong)} of "
          f"{len(known)} known {wrong[:6]}")
    assert len(known) > len(probe.seen) / 2  # the truth is known for most ticks
    assert not wrong


def test_tempo_change_120_to_150_tracked_within_one_bar(clock_rig_async, loaded_cpu):
    rig = clock_rig_async
    session, probe, ports = follow(rig)
    change = 192000 + 256  # beat 8 at 120 BPM (a period boundary), as in the -S test
    rig.master.set_tempo(120.0)
    rig.master.change_tempo_at(change, 150.0)
    rig.master.start_from(0)
    rig.wait(lambda: session.state.position >= 192 + 3 * 96, timeout=120, what="three bars after the change")
    rig.master.stop()
    ports.close()
    # Judged by the transport's position of each tick (the truth), not the follower's own count.
    seen = {tick: state for state in probe.seen.values()
            if (tick := rig.transport_tick_at(state.last_tick_time)) is not None}
    before = [p for p in seen if 48 <= p < 192]
    after = sorted(p for p in seen if p >= 192 + 96)
    errors_before = max(abs(seen[p].tempo_bpm - 120.0) for p in before)
    errors_after = max(abs(seen[p].tempo_bpm - 150.0) for p in after)
    off = [p for p in seen if p >= 192 and abs(seen[p].tempo_bpm - 150.0) > 0.05]
    print(f"async JACK, load average {load_average():.1f}: before the change worst {errors_before:.4f} BPM "
          f"from 120; within 0.05 BPM of 150 for good {max(off) - 192 + 1 if off else 0} ticks after the change; "
          f"from one bar after it worst {errors_after:.4f} BPM; tempo changes seen "
          f"{session.follower.estimator.changes}, steps {session.follower.estimator.steps}")
    assert errors_before <= 0.05
    assert errors_after <= 0.05
    assert session.state.locked_bpm == 150.0
