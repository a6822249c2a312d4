"""`cadenza jam`'s loop on a real JACK server with jack_midi_clock at 120 BPM and a real engine process.

A "DAW" client plays four notes into Cadenza In during phrase 1 and a keep note during phrase 2.
Checked: phrase 2 is the engine's continuation of phrase 1's take with those notes as context
(its parent in History), it starts on its bar line frame-exactly against the clock ticks an
independent client recorded, and the keep note marks its take kept.
"""
from __future__ import annotations

import json
import math
import threading
import time

import pytest

from bridge.client import EngineClient
from bridge.jam import Jam, JamLive, Trigger
from bridge.live import LiveSession
from bridge.ports import JackPorts
from engine.music.midi import smf_to_score
from engine.music.theory import Meter
from protos.cadenza.v1 import engine_pb2 as pb
from tests.bridge.jack_rig import RATE, Injector, clock_tick_frames

pytestmark = pytest.mark.jack

BPM = 120.0
PLAYED = [(0, 72), (6, 74), (12, 76), (18, 77)]  # (clock ticks into phrase 1, pitch): four sixteenths
KEEP_NOTE = 36


def test_jam_plays_the_next_phrase_on_its_bar_line_and_takes_a_keep(clock_rig, engine_process):
    jam_box: dict[str, Jam] = {}
    count = {"next": None}

    def daw(first, frames, incoming):  # counts jack_midi_clock's ticks; plays relative to the jam's plan
        out = []
        for offset, data in incoming:
            if data == b"\xfa":
                count["next"] = 0
            elif data == b"\xf8" and count["next"] is not None:
                position, count["next"] = count["next"], count["next"] + 1
                plan = jam_box["jam"].plan if "jam" in jam_box else None
                if plan is None:
                    continue
                for at, pitch in PLAYED:
                    if position == plan.start(0) + at:
                        out.append((offset, bytes([0x90, pitch, 96])))
                    if position == plan.start(0) + at + 4:
                        out.append((offset, bytes([0x80, pitch, 0])))
                if position == plan.start(1) + 30:
                    out.append((offset, bytes([0x99, KEEP_NOTE, 120])))
                if position == plan.start(1) + 34:
                    out.append((offset, bytes([0x89, KEEP_NOTE, 0])))
        return out

    sender = Injector("cadenza-daw", daw)
    clock_rig.extra.append(sender)
    clock_rig.connect(clock_rig.clock_port, "cadenza-daw:in")
    live = JamLive(LiveSession(Meter(4, 4)), keep=Trigger("note", KEEP_NOTE))
    ports = JackPorts(live.process, connect_in=[clock_rig.clock_port, "cadenza-daw:out"],
                      connect_out=["cadenza-recorder:out"])
    clock_rig.extra.append(ports)
    lines: list[str] = []
    session = f"jam-test-{time.monotonic_ns()}"
    with EngineClient(engine_process.target) as client:
        client.check()
        jam = Jam(live, client, "mellow jazz trio with piano, upright bass and drums", 2, session,
                  say=lines.append, phrases=2)
        jam_box["jam"] = jam
        clock_rig.master.set_tempo(BPM)
        clock_rig.master.start_from(0)
        failures: list[BaseException] = []

        def run() -> None:
            try:
                jam.run()
            except BaseException as error:  # shown by the assert below
                failures.append(error)

        runner = threading.Thread(target=run)
        runner.start()
        runner.join(timeout=90)
        assert not failures, failures
        assert not runner.is_alive(), "the jam did not finish two phrases within 90 s:\n" + "\n".join(lines)
        clock_rig.master.stop()
        time.sleep(0.1)
        history = {t.take: t for t in client.call("History", pb.HistoryRequest(session=session)).takes}
        takes = [client.call("GetTake", pb.TakeRequest(session=session, take=r.take)) for r in jam.reports]
    print("\n".join(lines))
    plan = jam.plan
    first, second = jam.reports
    assert first.on_time and second.on_time, lines

    # History: phrase 2 continues phrase 1's take, with the four played notes as context, and is kept.
    assert history[first.take].operation == "generate"
    assert history[second.take].parent == first.take and history[second.take].operation == "continue"
    params = json.loads(history[second.take].params_json)
    assert params["played_notes"] == len(PLAYED) and params["new_bars_only"] is True
    assert history[second.take].verdict == "keep"
    assert history[first.take].verdict == ""
    assert jam.verdicts == [(second.take, "keep")]
    assert all(t.spec.bars == 2 for t in takes)

    # Every note of both phrases on the recorder, where the clock ticks say it belongs.
    ticks = clock_tick_frames(clock_rig.recorder.events["clock"], BPM)
    expected = []  # (frame due, pitch, phrase)
    for k, take in enumerate(takes):
        score = smf_to_score(take.midi)
        for track in score.tracks:
            for note in track.notes:
                position = plan.start(k) + note.time * 24 / score.ticks_per_quarter
                whole = math.floor(position)
                assert whole in ticks and whole + 1 in ticks, f"the recorder missed the tick at {whole}"
                due = ticks[whole] + (position - whole) * (ticks[whole + 1] - ticks[whole])
                expected.append((due, note.pitch, k))
    onsets = sorted((frame, data[1]) for frame, data in clock_rig.recorder.events["out"]
                    if data[0] & 0xF0 == 0x90 and data[2] > 0)
    assert len(onsets) == len(expected), f"{len(onsets)} notes played, {len(expected)} in the two phrases"
    errors = {0: [], 1: []}
    remaining = list(onsets)
    for due, pitch, k in sorted(expected):
        frame = min((f for f, p in remaining if p == pitch), key=lambda f: abs(f - due))
        remaining.remove((frame, pitch))
        errors[k].append((frame - due) / RATE * 1000)
    line = ticks[plan.start(1)]
    first_of_phrase_2 = min(due for due, _, k in expected if k == 1)
    played_first = min(f for f, p in onsets if f >= line - 1)
    for k in (0, 1):
        rms = math.sqrt(sum(e * e for e in errors[k]) / len(errors[k]))
        print(f"phrase {k + 1}: {len(errors[k])} onsets, phase error mean {sum(errors[k]) / len(errors[k]):+.4f} ms, "
              f"RMS {rms:.4f} ms, worst {max(map(abs, errors[k])):.4f} ms")
        assert rms <= 1.0
    print(f"phrase 2 bar line at frame {line}; its first note due {first_of_phrase_2:.1f}, played at {played_first}; "
          f"ready {second.headroom_s:.3f} s before the bar line (Continue took {second.latency_s:.3f} s); "
          f"xruns {ports.xruns}")
    assert abs(played_first - first_of_phrase_2) <= 1
    assert not ports.errors


def test_cadenza_jam_in_the_terminal(clock_rig, engine_process, tmp_path):
    """The verb as a user runs it: `cadenza jam PROMPT --phrase 1 --phrases 3 --in CLOCK --out PORT`."""
    import subprocess
    import sys

    session = f"jam-cli-{time.monotonic_ns()}"
    clock_rig.master.set_tempo(BPM)
    jam = subprocess.Popen([sys.executable, "-m", "bridge.cli", "jam", "a calm folk tune with flute and guitar",
                            "--phrase", "1", "--phrases", "3", "--in", clock_rig.clock_port,
                            "--out", "cadenza-recorder:out", "--engine", engine_process.target,
                            "--session", session, "--keep-cc", "64", "--reject-note", "38"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = jam.stdout.readline()
        waiting = jam.stdout.readline()
        assert waiting.startswith("waiting for the clock"), (first, waiting)
        clock_rig.master.start_from(0)  # the DAW's Start: the jam joins the transport here
        out, err = jam.communicate(timeout=120)
    finally:
        if jam.poll() is None:
            jam.kill()
            jam.wait()
    clock_rig.master.stop()
    print(first + waiting + out)
    assert jam.returncode == 0, err
    done = subprocess.CompletedProcess(jam.args, jam.returncode, first + waiting + out, err)
    lines = done.stdout.splitlines()
    assert "keep = cc 64, reject = note 38" in lines[0]
    phrases = [line for line in lines if line.startswith("phrase ")]
    assert len(phrases) == 3 and "from the prompt" in phrases[0]
    assert all("before its bar line" in line for line in phrases), phrases
    with EngineClient(engine_process.target) as client:
        history = client.call("History", pb.HistoryRequest(session=session)).takes
    assert [t.operation for t in history] == ["generate", "continue", "continue"]
    assert [t.parent for t in history] == ["", history[0].take, history[1].take]
    notes_out = [d for _, d in clock_rig.recorder.events["out"] if d[0] & 0xF0 == 0x90 and d[2] > 0]
    assert notes_out, "nothing came out of Cadenza Out"


def test_a_phrase_asked_for_at_its_own_bar_line_plays_nothing_and_says_so(clock_rig, engine_process):
    """No lead at all: each next phrase is asked for on its own bar line, so it is late by the engine's
    latency. It must not play (not even its later notes), the jam must say so, and the phrase after it
    continues it (its bars are the ones the musician played over)."""
    from bridge.jam import LeadEstimator

    live = JamLive(LiveSession(Meter(4, 4)))
    ports = JackPorts(live.process, connect_in=[clock_rig.clock_port], connect_out=["cadenza-recorder:out"])
    clock_rig.extra.append(ports)
    lines: list[str] = []
    session = f"jam-late-{time.monotonic_ns()}"
    with EngineClient(engine_process.target) as client:
        jam = Jam(live, client, "a calm folk tune with flute and guitar", 1, session, say=lines.append, phrases=3,
                  lead=LeadEstimator(margin_beats=0.0, first_latency_s=0.0, factor=0.0))
        clock_rig.master.set_tempo(BPM)
        clock_rig.master.start_from(0)
        runner = threading.Thread(target=jam.run)
        runner.start()
        runner.join(timeout=90)
        assert not runner.is_alive(), "\n".join(lines)
        clock_rig.master.stop()
        time.sleep(0.1)
        history = client.call("History", pb.HistoryRequest(session=session)).takes
    print("\n".join(lines))
    first, second, third = jam.reports
    assert first.on_time and not second.on_time and not third.on_time
    assert second.headroom_s < 0 and "late" in lines[-1] and "play nothing rather than late" in lines[-1]
    assert [t.parent for t in history] == ["", history[0].take, history[1].take]
    # Only phrase 1's notes came out, all within its bar; nothing from the two late phrases.
    ticks = clock_tick_frames(clock_rig.recorder.events["clock"], BPM)
    plan = jam.plan
    onsets = [f for f, d in clock_rig.recorder.events["out"] if d[0] & 0xF0 == 0x90 and d[2] > 0]
    phrase_1 = sum(len(t.notes) for t in smf_to_score(client_take(engine_process, session, first.take).midi).tracks)
    assert len(onsets) == phrase_1
    assert all(ticks[plan.start(0)] <= f < ticks[plan.start(1)] for f in onsets)


def client_take(engine_process, session: str, take: str):
    with EngineClient(engine_process.target) as client:
        return client.call("GetTake", pb.TakeRequest(session=session, take=take))
