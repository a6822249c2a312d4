"""The co-creation loop through a real engine process, MIDI read back by mido at every step.

generate -> reject -> vary the bass -> keep -> infill bars 5-6 of the melody -> continue 8 bars
-> export, with a kill -9 of the engine in the middle and a restart on the same state folder.
"""
from __future__ import annotations

import io
import json
import os
import signal
from collections import defaultdict
from pathlib import Path

import mido
import pytest

from bridge.client import EngineClient, EngineProcess, RequestRejected
from protos.cadenza.v1 import engine_pb2 as pb
from tests.conftest import run_cli

PROMPT = "a pop tune with flute melody, bass and drums"
BAR = 4 * 480  # 4/4 at 480 ticks per quarter


def read_midi(data: bytes) -> dict:
    """Notes per track name as (onset, pitch, velocity, duration), plus tempo, key and length, by mido."""
    midi = mido.MidiFile(file=io.BytesIO(data))
    assert midi.ticks_per_beat == 480
    tracks: dict[str, list] = defaultdict(list)
    meta = {"tempo": [], "key": [], "time_signature": []}
    for track in midi.tracks:
        now, name, sounding = 0, track.name, {}
        for message in track:
            now += message.time
            if message.type == "set_tempo":
                meta["tempo"].append(round(mido.tempo2bpm(message.tempo), 3))
            elif message.type == "key_signature":
                meta["key"].append(message.key)
            elif message.type == "time_signature":
                meta["time_signature"].append((message.numerator, message.denominator))
            elif message.type == "note_on" and message.velocity > 0:
                sounding.setdefault((message.channel, message.note), []).append((now, message.velocity))
            elif message.type in ("note_off", "note_on"):
                start, velocity = sounding[(message.channel, message.note)].pop(0)
                tracks[name].append((start, message.note, velocity, now - start))
    return {"tracks": {k: sorted(v) for k, v in tracks.items()}, **meta}


def outside(notes: list, first_bar: int, last_bar: int) -> list:
    return [n for n in notes if not (first_bar - 1) * BAR <= n[0] < last_bar * BAR]


def inside(notes: list, first_bar: int, last_bar: int) -> list:
    return [n for n in notes if (first_bar - 1) * BAR <= n[0] < last_bar * BAR]


@pytest.fixture()
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def _generate(client: EngineClient, session: str) -> pb.GenerateResult:
    return client.generate(PROMPT, pb.Overrides(bars=8, seed=4, tempo_bpm=100, key="G major"), session=session)


def test_the_loop_with_a_kill_9_in_the_middle(state: Path, tmp_path: Path) -> None:
    session = "song"
    engine = EngineProcess("--state", str(state))
    client = EngineClient(engine.target)
    client.check(timeout=60)
    first = _generate(client, session)
    original = read_midi(first.midi)
    assert {"flute", "bass", "drums"} <= set(original["tracks"])  # named parts join the style's own
    client.call("Verdict", pb.VerdictRequest(session=session, take=first.take, verdict="reject", reason="too busy"))

    varied = client.call("Vary", pb.VaryRequest(session=session, take=first.take, parts=["bass"], amount=0.5))
    assert varied.parent == first.take
    after_vary = read_midi(varied.midi)
    assert after_vary["tracks"]["bass"] != original["tracks"]["bass"]
    for part in ("flute", "drums"):
        assert after_vary["tracks"][part] == original["tracks"][part], f"{part} changed in a bass variation"

    # kill -9 in the middle of the loop, then a restart on the same state folder
    os.kill(engine.process.pid, signal.SIGKILL)
    engine.process.wait()
    client.close()
    engine = EngineProcess("--state", str(state))
    client = EngineClient(engine.target)
    try:
        client.check(timeout=60)
        history = client.call("History", pb.HistoryRequest(session=session)).takes
        assert [(t.take, t.parent, t.verdict) for t in history] == [
            (first.take, "", "reject"), (varied.take, first.take, "")]
        assert client.call("GetTake", pb.TakeRequest(session=session, take=varied.take)).midi == varied.midi

        client.call("Verdict", pb.VerdictRequest(session=session, take=varied.take, verdict="keep"))
        filled = client.call("Infill", pb.InfillRequest(session=session, take=varied.take, part="flute",
                                                        first_bar=5, last_bar=6))
        after_infill = read_midi(filled.midi)
        assert filled.parent == varied.take
        melody, before = after_infill["tracks"]["flute"], after_vary["tracks"]["flute"]
        assert outside(melody, 5, 6) == outside(before, 5, 6), "the melody changed outside bars 5-6"
        assert inside(melody, 5, 6) != inside(before, 5, 6), "bars 5-6 of the melody did not change"
        assert inside(melody, 5, 6), "the infilled bars are empty"
        assert all(start + length <= 6 * BAR for start, _, _, length in inside(melody, 5, 6))
        for part in ("bass", "drums"):
            assert after_infill["tracks"][part] == after_vary["tracks"][part]

        continued = client.call("Continue", pb.ContinueRequest(session=session, take=filled.take, bars=8))
        after_continue = read_midi(continued.midi)
        assert continued.parent == filled.take and continued.spec.bars == 16
        assert after_continue["tempo"] == after_infill["tempo"] == [100.0]
        assert after_continue["key"] == after_infill["key"] == ["G"]
        assert after_continue["time_signature"] == after_infill["time_signature"]
        for part, notes in after_infill["tracks"].items():
            new = after_continue["tracks"][part]
            assert [n for n in new if n[0] < 8 * BAR] == notes, f"{part}: the first 8 bars changed"
            added = [n for n in new if n[0] >= 8 * BAR]
            assert added, f"{part}: nothing in the 8 new bars"
            assert max(n[0] + n[3] for n in added) <= 16 * BAR
            assert max(n[0] for n in added) >= 14 * BAR, f"{part}: the continuation stops early"

        out = tmp_path / "export"
        done = run_cli("export", continued.take, "--out", str(out), "--session", session, "--engine", engine.target,
                       "--json", timeout=300)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["take"] == continued.take
        assert read_midi((out / "clip.mid").read_bytes())["tracks"] == after_continue["tracks"]
        assert {p.name for p in (out / "stems").iterdir()} >= {"flute.wav", "bass.wav", "drums.wav"}

        history = client.call("History", pb.HistoryRequest(session=session)).takes
        assert [(t.operation, t.parent, t.verdict) for t in history] == [
            ("generate", "", "reject"), ("vary", first.take, "keep"), ("infill", varied.take, ""),
            ("continue", filled.take, "")]
        listed = run_cli("history", "--session", session, "--engine", engine.target, "--json")
        assert listed.returncode == 0, listed.stderr
        rows = json.loads(listed.stdout)["takes"]
        assert [(r["take"], r["parent"], r["verdict"]) for r in rows] == [
            (first.take, None, "reject"), (varied.take, first.take, "keep"), (filled.take, varied.take, None),
            (continued.take, filled.take, None)]
    finally:
        client.close()
        engine.close()


def test_rearrange_and_accompany_keep_what_they_must(engine: EngineClient, tmp_path: Path) -> None:
    first = _generate(engine, "arrange")
    before = read_midi(first.midi)
    moved = engine.call("Rearrange", pb.RearrangeRequest(session="arrange", take=first.take, key="A major",
                                                         tempo_bpm=80, instruments={"flute": "violin"}))
    after = read_midi(moved.midi)
    assert after["tempo"] == [80.0] and after["key"] == ["A"]
    assert [(t, p + 2, v, d) for t, p, v, d in before["tracks"]["bass"]] == after["tracks"]["bass"]
    assert before["tracks"]["drums"] == after["tracks"]["drums"]
    programs = {t.name: t.program for t in __import__("symusic").Score.from_midi(moved.midi).tracks}
    assert programs["violin"] == 40 and "flute" not in programs  # the part is renamed with its instrument
    assert [p.name for p in moved.spec.parts if p.program == 40] == ["violin"]
    filled = engine.call("Infill", pb.InfillRequest(session="arrange", take=moved.take, part="violin",
                                                    first_bar=1, last_bar=2))
    assert "violin" in {t.name for t in __import__("symusic").Score.from_midi(filled.midi).tracks}

    melody_only = tmp_path / "melody.mid"
    score = __import__("symusic").Score.from_midi(first.midi)
    score.tracks = [t for t in score.tracks if t.name == "flute"]
    score.dump_midi(str(melody_only))
    done = run_cli("accompany", str(melody_only), "jazz", "--add", "bass,drums", "--session", "arrange",
                   "--engine", engine.target, "--json", "--out", str(tmp_path / "acc"))
    assert done.returncode == 0, done.stderr
    added = read_midi(Path(json.loads(done.stdout)["midi"]).read_bytes())
    assert added["tracks"]["flute"] == before["tracks"]["flute"]
    new_parts = {name: notes for name, notes in added["tracks"].items() if name != "flute"}
    assert len(new_parts) == 2 and all(new_parts.values()), new_parts.keys()


@pytest.mark.parametrize(("method", "request_", "code", "words"), [
    ("Vary", pb.VaryRequest(session="bad", take="nope", parts=["bass"]), "NOT_FOUND", "no take"),
    ("History", pb.HistoryRequest(session="never-made"), "NOT_FOUND", "no session"),
    ("History", pb.HistoryRequest(session=""), "INVALID_ARGUMENT", "session"),
    ("Accompany", pb.AccompanyRequest(session="bad", midi=b"not midi", add=["bass"]), "INVALID_ARGUMENT", "MThd"),
    ("Continue", pb.ContinueRequest(session="bad", bars=4), "INVALID_ARGUMENT", "take"),
])
def test_bad_requests_name_what_is_wrong(engine: EngineClient, method: str, request_, code: str, words: str) -> None:
    with pytest.raises(RequestRejected, match=words) as caught:
        engine.call(method, request_)
    assert caught.value.code.name == code


def test_bad_arguments_on_a_real_take_leave_history_untouched(engine: EngineClient) -> None:
    take = _generate(engine, "strict").take
    bad = [
        ("Infill", pb.InfillRequest(session="strict", take=take, part="flute", first_bar=7, last_bar=12), "bars"),
        ("Infill", pb.InfillRequest(session="strict", take=take, part="tuba", first_bar=1, last_bar=2), "tuba"),
        ("Vary", pb.VaryRequest(session="strict", take=take, parts=["bass"], amount=3.0), "amount"),
        ("Verdict", pb.VerdictRequest(session="other", take=take, verdict="keep"), "not in session"),
        ("Verdict", pb.VerdictRequest(session="strict", take=take, verdict="rate", rating=6), "rating"),
        ("Rearrange", pb.RearrangeRequest(session="strict", take=take, key="A minor"), "mode"),
    ]
    for method, request, words in bad:
        with pytest.raises(RequestRejected, match=words):
            engine.call(method, request)
    history = engine.call("History", pb.HistoryRequest(session="strict")).takes
    assert [(t.take, t.verdict, t.rating) for t in history] == [(take, "", 0)]


def test_taste_speaks_after_verdicts(engine: EngineClient) -> None:
    take = _generate(engine, "tasty").take
    engine.call("Verdict", pb.VerdictRequest(session="tasty", take=take, verdict="reject", reason="too busy"))
    reply = engine.call("Taste", pb.TasteRequest(session="tasty"))
    assert reply.examples == 1 and any("too busy" in line for line in reply.lines)
    assert reply.weights["density"] < 0  # "too busy" steers towards sparser takes


def test_train_from_feedback_fine_tunes_on_kept_takes(engine: EngineClient, tmp_path: Path,
                                                      untrained_checkpoint: Path) -> None:
    out = tmp_path / "tuned.pt"
    take = _generate(engine, "feedback").take
    engine.call("Verdict", pb.VerdictRequest(session="feedback", take=take, verdict="reject"))
    refused = run_cli("train", "--from-feedback", "feedback", "--engine", engine.target, "--out", str(out))
    assert refused.returncode == 2 and "no kept" in refused.stderr and not out.exists()
    kept = engine.call("Vary", pb.VaryRequest(session="feedback", take=take, parts=["bass"])).take
    engine.call("Verdict", pb.VerdictRequest(session="feedback", take=kept, verdict="keep"))
    done = run_cli("train", "--from-feedback", "feedback", "--engine", engine.target, "--init",
                   str(untrained_checkpoint), "--steps", "2", "--out", str(out), timeout=600)
    assert done.returncode == 0, done.stderr
    assert "fine-tuning on 1 takes" in done.stdout and out.is_file()


def test_two_clients_writing_one_session_lose_nothing(engine_process: EngineProcess) -> None:
    import threading

    with EngineClient(engine_process.target) as first:
        take = _generate(first, "together").take
    made: list[str] = []
    lock = threading.Lock()

    def work(part: str) -> None:
        with EngineClient(engine_process.target) as client:
            for _ in range(6):
                result = client.call("Vary", pb.VaryRequest(session="together", take=take, parts=[part]))
                with lock:
                    made.append(result.take)

    threads = [threading.Thread(target=work, args=(part,)) for part in ("bass", "flute")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with EngineClient(engine_process.target) as client:
        history = client.call("History", pb.HistoryRequest(session="together")).takes
    assert len(made) == 12
    assert sorted(t.take for t in history) == sorted([take, *made])
    assert all(t.parent == take for t in history if t.take != take)


def test_a_part_may_be_named_by_the_role_it_plays(engine: EngineClient) -> None:
    """`vary --parts bass` on a take whose bass part is called upright_bass varies that part only."""
    first = engine.generate("mellow jazz trio with piano, upright bass and drums in F, 4 bars",
                            pb.Overrides(seed=5), session="roles")
    parts = {p.name: p.role for p in first.spec.parts}
    bass = [name for name, role in parts.items() if role == "bass"]
    assert len(bass) == 1 and bass[0] != "bass", parts
    varied = engine.call("Vary", pb.VaryRequest(session="roles", take=first.take, parts=["bass"], seed=9))
    assert varied.params_json and json.loads(varied.params_json)["parts"] == bass
    before, after = read_midi(first.midi)["tracks"], read_midi(varied.midi)["tracks"]
    assert after[bass[0]] != before[bass[0]]
    assert all(after[name] == before[name] for name in parts if name != bass[0])
