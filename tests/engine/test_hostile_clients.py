"""Issue 18: hostile input and hostile clients against a real `cadenza serve` process on loopback.

Each test attacks a real engine the way the issue's report did and checks the engine holds:
the plugin path checked is the path loaded; health watches hold no threads and are bounded;
oversized or ill-timed MIDI is refused at once, naming ``midi``; work stops when its caller
leaves and on SIGTERM; a render too big for memory is refused before it starts and the render
worker runs under an address-space limit; a stream nobody reads frees its worker; every stored
field is bounded; presets and SoundFonts are confined like plugins; a chatty plugin's stderr is not kept.
"""
from __future__ import annotations

import os
import signal
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bridge.client import EngineClient, EngineProcess, RequestRejected
from engine import config
from protos.cadenza.v1 import engine_pb2 as pb
from protos.cadenza.v1 import engine_pb2_grpc as pb_grpc
from tests.plugin_host.clip_scores import make_score

# -- MIDI files written byte by byte ---------------------------------------------------------


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


END_OF_TRACK = b"\x00\xff\x2f\x00"


def _smf(events: bytes, ticks_per_quarter: int = 480) -> bytes:
    """A format-0 Standard MIDI File with one track of ``events`` (delta-timed, end of track added)."""
    track = events + END_OF_TRACK
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_quarter) + b"MTrk" + struct.pack(">I", len(track)) + track


def _note(ticks: int, pitch: int = 60) -> bytes:
    """Note on at delta 0, note off ``ticks`` later (middle C by default)."""
    return bytes([0x00, 0x90, pitch, 0x40]) + _vlq(ticks) + bytes([0x80, pitch, 0x00])


LONG_NOTE = _smf(_note(0x0FFFFFFF))                     # 37 bytes: one note 0x0FFFFFFF ticks long
SLOWEST_TEMPO = _smf(b"\x00\xff\x51\x03\xff\xff\xff" + _note(480 * 60))  # 16.8 s a quarter: 1,006 s
ILL_TIMED = {  # what symusic reads without complaint and what the timing math cannot use
    "ticks per quarter 0": _smf(_note(480), ticks_per_quarter=0),
    "tempo 0": _smf(b"\x00\xff\x51\x03\x00\x00\x00" + _note(480)),
    "meter 0/0": _smf(b"\x00\xff\x58\x04\x00\x00\x18\x08" + _note(480)),
    "meter 4/2^255": _smf(b"\x00\xff\x58\x04\x04\xff\x18\x08" + _note(480)),
}
assert len(LONG_NOTE) == 37


def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(RequestRejected) as caught:
        call()
    return caught.value.code, str(caught.value)


@pytest.fixture()
def small_engine() -> Iterator[tuple[EngineProcess, EngineClient]]:
    """One worker, one waiting slot: a request that does not let go is seen at once."""
    with EngineProcess("--workers", "1", "--queue", "1") as process, EngineClient(process.target) as client:
        client.check()
        yield process, client


def _plain_stub(target: str) -> pb_grpc.EngineStub:
    """A stub on a channel of its own without client-side health checking (which uses Watch)."""
    return pb_grpc.EngineStub(grpc.insecure_channel(target))


# -- High 1: the plugin path checked is the path loaded ---------------------------------------

MARKER_C = r"""
#include <stdio.h>
__attribute__((constructor)) static void on_load(void) {
    FILE *marker = fopen(MARKER, "w");
    if (marker) { fputs("a library from outside every plugin folder ran\n", marker); fclose(marker); }
}
"""


def _outside_bundle(folder: Path, marker: Path) -> Path:
    """A VST3 bundle whose library, once loaded, writes ``marker``: proof that it was loaded."""
    source = folder / "outside.c"
    source.write_text(MARKER_C)
    bundle = folder / "Outside.vst3"
    binary = bundle / "Contents" / "x86_64-linux" / "Outside.so"
    binary.parent.mkdir(parents=True)
    subprocess.run(["cc", "-shared", "-fPIC", f'-DMARKER="{marker}"', "-o", str(binary), str(source)], check=True)
    return bundle


def test_a_plugin_symlink_swapped_after_the_check_is_not_followed_by_the_render_worker(tmp_path):
    from tests.plugins.build import build_plugin

    inside = tmp_path / "plugins"
    inside.mkdir()
    drive = build_plugin("CadenzaDrive", inside)
    (tmp_path / "outside").mkdir()
    marker = tmp_path / "outside-ran"
    outside = _outside_bundle(tmp_path / "outside", marker)
    link = tmp_path / "link.vst3"  # outside the folder, leading into it: allowed, judged by its target
    link.symlink_to(drive)
    busy = bytes(make_score(bars=64).dumps_midi())  # keeps the warm render worker busy for seconds
    midi = bytes(make_score(bars=2).dumps_midi())
    with EngineProcess("--plugin-folder", str(inside)) as process, EngineClient(process.target) as client:
        client.check()
        first = threading.Thread(target=client.render, args=(busy,))
        first.start()
        time.sleep(1.0)  # the first render holds the warm worker: the next one starts a fresh worker
        call = pb_grpc.EngineStub(client.channel).Render(pb.RenderRequest(
            midi=midi, plugins={"bass": str(link)}, roles={"bass": "bass"}))
        assert next(call).HasField("progress")  # checked and admitted; the fresh worker is still starting
        link.unlink()
        link.symlink_to(outside)  # the swap an attacker makes between check and load
        events = list(call)
        first.join(120)
    assert not marker.exists(), "the render worker loaded a library from outside every plugin folder"
    assert any(event.HasField("header") for event in events)  # it rendered with the plugin that was checked


# -- High 2: health holds no threads; watches are bounded -------------------------------------

def test_health_watch_streams_hold_no_threads_and_are_bounded_per_peer(engine_process):
    channel = grpc.insecure_channel(engine_process.target)
    health = health_pb2_grpc.HealthStub(channel)
    wanted = config.HEALTH_WATCH_PER_PEER + 16
    watches = [health.Watch(health_pb2.HealthCheckRequest(service="")) for _ in range(wanted)]
    try:
        first = []
        refused = 0
        for watch in watches:
            try:
                first.append(next(watch).status)
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
                assert "health watches" in error.details()
                refused += 1
        print(f"{wanted} watches: {len(first)} open, {refused} refused")
        assert refused >= wanted - config.HEALTH_WATCH_PER_PEER
        assert all(status == health_pb2.HealthCheckResponse.SERVING for status in first)
        # With every watch open, the engine still answers on other connections, without a token.
        other = grpc.insecure_channel(engine_process.target)
        started = time.monotonic()
        reply = health_pb2_grpc.HealthStub(other).Check(
            health_pb2.HealthCheckRequest(service="cadenza.v1.Engine"), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        checked = time.monotonic() - started
        # (the first Describe may wait for the text model to load)
        assert pb_grpc.EngineStub(other).Describe(pb.DescribeRequest(prompt="disco track"), timeout=60).style == "disco"
        print(f"beside the watches Check answered in {1000 * checked:.0f} ms, "
              f"Describe in {1000 * (time.monotonic() - started - checked):.0f} ms")
        other.close()
    finally:
        for watch in watches:
            watch.cancel()
        channel.close()


# -- High 3: bounded input, work that stops when its caller leaves, a shutdown that ends ------

def test_a_37_byte_midi_file_with_a_note_of_2_to_the_28_ticks_is_refused_at_once_by_every_operation(engine):
    started = time.monotonic()
    for name, call in (
            ("Accompany", lambda: engine.call("Accompany", pb.AccompanyRequest(
                session="hostile", midi=LONG_NOTE, add=["bass"], prompt="jazz"))),
            ("Continue", lambda: engine.call("Continue", pb.ContinueRequest(
                session="hostile", midi=LONG_NOTE, bars=4, prompt="jazz"))),
            ("Render", lambda: engine.render(LONG_NOTE))):
        code, text = _code(call)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and text.startswith("midi:"), (name, code, text)
    print(f"refused by Accompany, Continue and Render in {1000 * (time.monotonic() - started):.0f} ms")
    engine.check()


def test_work_stops_when_the_caller_passes_its_deadline_and_frees_the_only_worker(small_engine):
    process, client = small_engine
    take = client.generate("jazz trio with piano, bass and drums", pb.Overrides(bars=8, seed=1), session="deadline")
    stub = _plain_stub(process.target)
    with pytest.raises(grpc.RpcError) as caught:  # about a minute of decoding, abandoned after 2 s
        stub.Continue(pb.ContinueRequest(session="deadline", take=take.take, bars=240, seed=1), timeout=2)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    started = time.monotonic()
    assert stub.Describe(pb.DescribeRequest(prompt="disco track"), timeout=20).style == "disco"
    print(f"the only worker was free {1000 * (time.monotonic() - started):.0f} ms after the deadline")


def test_sigterm_ends_the_engine_while_a_long_request_is_running():
    process = EngineProcess()
    client = EngineClient(process.target)
    client.check()
    # 240 s of four stems at 44.1 kHz: far longer to render than the grace and the abandon window
    # together on any machine this runs on, and within the render memory limit.
    midi = bytes(make_score(tempo=40.0, bars=40).dumps_midi())
    outcome: dict = {}
    rendering = threading.Event()  # the engine has said it is rendering: the request is in, not in flight

    def long_render() -> None:
        try:
            client.render(midi, sample_rate=44100, on_progress=lambda progress: rendering.set())
            outcome["result"] = "finished"
        except Exception as error:  # noqa: BLE001 - the status is what is checked
            outcome["result"] = error

    thread = threading.Thread(target=long_render)
    thread.start()
    assert rendering.wait(120), f"the engine never reported the render in progress: {outcome}"
    time.sleep(1.0)
    assert not outcome, "the render should still be running when the signal is sent"
    started = time.monotonic()
    process.process.send_signal(signal.SIGTERM)
    try:
        code = process.process.wait(timeout=config.SHUTDOWN_GRACE_SECONDS + config.SHUTDOWN_ABANDON_SECONDS + 10)
    except subprocess.TimeoutExpired:
        process.process.kill()
        pytest.fail("the engine was still running well after SIGTERM")
    print(f"engine exited {time.monotonic() - started:.1f} s after SIGTERM with code {code}; the render: {outcome}")
    assert code == 0
    thread.join(30)
    assert isinstance(outcome.get("result"), RequestRejected | ConnectionError), outcome
    client.close()


# -- High 4: render memory is bounded before the render and in the worker --------------------

@pytest.mark.parametrize("rate", [48000, 96000])
def test_a_render_too_big_for_memory_is_refused_before_the_worker_starts_it(engine, rate):
    assert len(SLOWEST_TEMPO) < 100
    call = pb_grpc.EngineStub(engine.channel).Render(pb.RenderRequest(midi=SLOWEST_TEMPO, sample_rate=rate),
                                                     timeout=60)
    try:
        first = next(call)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
        assert error.details().startswith("midi:") and "GiB" in error.details(), error.details()
        print(error.details())
        return
    call.cancel()  # the render began: stop it before it takes gigabytes
    pytest.fail(f"the render was started ({first}) instead of refused")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="reads /proc (Linux)")
def test_the_render_worker_runs_under_an_address_space_limit(engine_process, engine):
    engine.render(bytes(make_score(bars=1).dumps_midi()))  # a worker exists, idle and warm
    limits = []
    for child in _children(engine_process.process.pid):
        command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"plugin_host.worker" in command:
            line = next(line for line in Path(f"/proc/{child}/limits").read_text().splitlines()
                        if line.startswith("Max address space"))
            limits.append(line.split()[3])
    assert limits, "no render worker found"
    assert set(limits) == {str(config.RENDER_WORKER_ADDRESS_SPACE_BYTES)}, limits


# -- Medium 5: a stream nobody reads -----------------------------------------------------------

def test_a_render_stream_the_client_never_reads_frees_its_worker_after_the_write_timeout():
    write_timeout = 3.0
    with EngineProcess("--workers", "1", "--queue", "1", "--write-timeout", str(write_timeout)) as process:
        client = EngineClient(process.target)
        client.check()
        midi = bytes(make_score(bars=24).dumps_midi())  # 47 s of 4 stems and a mix: 90 MB of messages
        lazy = grpc.insecure_channel(process.target, options=[("grpc.max_receive_message_length", 8 << 20)])
        unread = pb_grpc.EngineStub(lazy).Render(pb.RenderRequest(midi=midi))
        assert next(unread).HasField("progress")  # admitted, then never read again
        started = time.monotonic()
        reply = _plain_stub(process.target).Describe(pb.DescribeRequest(prompt="disco track"), timeout=90)
        waited = time.monotonic() - started
        print(f"Describe answered {waited:.1f} s after the unread render took the only worker")
        assert reply.style == "disco"
        with pytest.raises(grpc.RpcError) as caught:
            list(unread)
        assert caught.value.code() == grpc.StatusCode.CANCELLED
        lazy.close()
        client.close()


# -- Medium 6: every stored field and every reply bounded -------------------------------------

def test_a_huge_reason_and_repeated_parts_are_refused_and_the_session_stays_usable(engine):
    take = engine.generate("calm piano, 2 bars", pb.Overrides(seed=4), session="bounded")
    code, text = _code(lambda: engine.call("Verdict", pb.VerdictRequest(
        session="bounded", take=take.take, verdict="reject", reason="x" * 4_500_000)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and text.startswith("reason:"), text
    assert str(config.REASON_MAX_CHARS) in text
    engine.call("Verdict", pb.VerdictRequest(session="bounded", take=take.take, verdict="reject",
                                             reason="y" * config.REASON_MAX_CHARS))
    code, text = _code(lambda: engine.call("Accompany", pb.AccompanyRequest(
        session="bounded", midi=take.midi, add=["bass"] * 1000, prompt="jazz")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and text.startswith("add:") and "bass" in text, text
    assert len(engine.call("History", pb.HistoryRequest(session="bounded")).takes) == 1
    assert engine.call("GetTake", pb.TakeRequest(session="bounded", take=take.take)).midi == take.midi
    assert engine.call("Taste", pb.TasteRequest(session="bounded")).lines


def test_history_too_big_for_one_reply_says_how_many_older_takes_it_left_out(tmp_path):
    """A session of 1,000 takes, each with a prompt of the most characters a request may send: History
    sends the newest that fit one reply and says how many older ones it left out; `cadenza history`
    says so too. (The takes are written to the store first, as 1,000 Generates would have.)"""
    import json
    import time

    from engine.music.midi import score_to_smf
    from engine.serving.convert import spec_to_pb
    from engine.sessions.store import Take, new_take_id, open_store
    from engine.understand.prompt import understand
    from tests.conftest import run_cli

    prompt = ("a calm piano tune with a walking bass " * 60)[:config.PROMPT_MAX_CHARS]
    spec = spec_to_pb(understand("a calm piano tune with a walking bass, 2 bars")).SerializeToString()
    spec = pb.MusicSpec.FromString(spec)
    spec.prompt = prompt
    midi = score_to_smf(make_score(bars=2))
    store = open_store(tmp_path / "state")
    made = []
    try:
        for k in range(1000):
            made.append(store.add(Take(id=new_take_id(), session="long", parent=None, operation="generate",
                                       params={"prompt": prompt, "candidates": 1}, spec=spec.SerializeToString(),
                                       seed=k, model_version="test", midi=midi, created=time.time() + k)).id)
    finally:
        store.close()
    with EngineProcess("--state", str(tmp_path / "state")) as process, EngineClient(process.target) as client:
        client.check()
        reply = client.call("History", pb.HistoryRequest(session="long"))
        assert 0 < reply.omitted < 1000 and len(reply.takes) + reply.omitted == 1000, reply.omitted
        assert [t.take for t in reply.takes] == made[reply.omitted:]  # the newest, oldest first
        assert reply.ByteSize() <= config.GRPC_MAX_SEND_BYTES
        shown = run_cli("history", "--session", "long", "--engine", process.target)
        listed = run_cli("history", "--session", "long", "--engine", process.target, "--json")
    assert shown.returncode == 0, shown.stderr
    assert f"session long: {len(reply.takes)} takes" in shown.stdout
    assert f"({reply.omitted} older takes left out" in shown.stdout, shown.stdout[:300]
    assert listed.returncode == 0 and json.loads(listed.stdout)["omitted"] == reply.omitted


def test_a_take_too_big_to_send_back_is_not_stored(engine):
    from symusic import ControlChange, Note, Score, Tempo, Track

    score = Score(480)
    score.tempos.append(Tempo(0, qpm=120.0))
    lead = Track(name="lead", program=0)
    for bar in range(8):
        lead.notes.append(Note(bar * 1920, 960, 60 + bar, 90))
    for i in range(1_350_000):  # mod wheel moves: 3 bytes each, under the 4 MiB input limit in all
        lead.controls.append(ControlChange(i % 15360, 1, i % 128))
    score.tracks.append(lead)
    midi = bytes(score.dumps_midi())
    assert config.TAKE_MIDI_MAX_BYTES < len(midi) <= config.MIDI_MAX_BYTES, len(midi)
    code, text = _code(lambda: engine.call("Accompany", pb.AccompanyRequest(
        session="too-big", midi=midi, add=["bass"], prompt="jazz")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and text.startswith("midi:"), text
    assert str(config.TAKE_MIDI_MAX_BYTES) in text


# -- Low: ill-timed MIDI, NUL paths, presets confined, the prompt optional, stderr bounded -----

@pytest.mark.parametrize("case", sorted(ILL_TIMED))
def test_ill_timed_midi_gets_invalid_argument_naming_midi_from_every_operation(engine, case):
    midi = ILL_TIMED[case]
    for name, call in (
            ("Render", lambda: engine.render(midi)),
            ("Continue", lambda: engine.call("Continue", pb.ContinueRequest(session="ill", midi=midi, bars=2))),
            ("Accompany", lambda: engine.call("Accompany", pb.AccompanyRequest(session="ill", midi=midi,
                                                                                add=["bass"])))):
        code, text = _code(call)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and text.startswith("midi:"), (case, name, code, text)


def test_a_nul_in_a_plugin_path_gets_invalid_argument_naming_the_plugin(engine):
    code, text = _code(lambda: engine.render(bytes(make_score(bars=1).dumps_midi()),
                                             plugins={"bass": "/usr/lib/vst3/a\0b.vst3"}))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and text.startswith("plugins[bass]:"), text


def test_presets_outside_the_plugin_folders_are_never_opened(tmp_path):
    from tests.plugins.build import build_plugin

    folder = tmp_path / "plugins"
    folder.mkdir()
    drive = build_plugin("CadenzaDrive", folder)
    secret = tmp_path / "secret.json"
    secret.write_text('{"api_key": "hunter2"}')
    midi = bytes(make_score(bars=1).dumps_midi())
    with EngineProcess("--plugin-folder", str(folder)) as process, EngineClient(process.target) as client:
        client.check()
        answers = []
        for preset in (str(secret), str(tmp_path / "missing.json")):
            code, text = _code(lambda preset=preset: client.render(midi, plugins={"bass": str(drive)},
                                                                   presets={"bass": preset}))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and text.startswith("presets[bass]:"), text
            answers.append(text.replace(preset, "PATH"))
        assert answers[0] == answers[1], answers  # an existing file and a missing one: the same answer
        assert "api_key" not in answers[0] and "parameters" not in answers[0]
        shipped = client.render(midi, plugins={"bass": str(drive)}, presets={"bass": "crunch"},
                                roles={"bass": "bass"})
        assert shipped.mix.shape[0] > 0  # a preset shipped for the plugin still loads by name


def test_soundfonts_outside_the_soundfont_and_plugin_folders_are_never_opened(tmp_path):
    import shutil

    from plugin_host.soundfont import default_soundfont

    folder, outside = tmp_path / "plugins", tmp_path / "elsewhere"
    folder.mkdir()
    outside.mkdir()
    bank = shutil.copy(default_soundfont(), outside / "bank.sf2")  # a real SoundFont, in no allowed folder
    (folder / "through-link.sf2").symlink_to(bank)
    inside = shutil.copy(default_soundfont(), folder / "inside.sf2")
    (folder / "notes.txt").write_text("not a SoundFont")
    midi = bytes(make_score(bars=1).dumps_midi())
    with EngineProcess("--plugin-folder", str(folder)) as process, EngineClient(process.target) as client:
        client.check()
        answers = []
        for path in (str(bank), str(outside / "missing.sf2"), "/etc/passwd", str(folder / "through-link.sf2")):
            code, text = _code(lambda path=path: client.render(midi, soundfont=path))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and text.startswith("soundfont:"), text
            assert "not in a SoundFont folder" in text and str(folder.resolve()) in text, text
            assert str(default_soundfont().parent) in text and "--plugin-folder" in text, text
            answers.append(text.replace(path, "PATH"))
        assert len(set(answers)) == 1, answers  # existing, missing, any file, a link out: one answer
        code, text = _code(lambda: client.render(midi, soundfont=str(folder / "notes.txt")))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "is not an .sf2 or .sf3 file" in text, text
        for allowed in (inside, default_soundfont()):  # a plugin folder; a standard SoundFont folder
            audio = client.render(midi, soundfont=str(allowed))
            assert audio.mix.shape[0] > 0 and f"soundfont:{Path(allowed).resolve()}" in audio.sources.values(), \
                audio.sources


def test_the_cli_lets_an_engine_it_starts_read_the_soundfont_named_on_its_command_line(tmp_path):
    """`cadenza generate --soundfont PATH` without --engine: the engine started for the call may read
    that file's folder (the user named it), and the parts the bank plays are played from it."""
    import json
    import shutil

    from plugin_host.soundfont import default_soundfont
    from tests.conftest import run_cli

    (tmp_path / "fonts").mkdir()
    bank = shutil.copy(default_soundfont(), tmp_path / "fonts" / "mine.sf2")
    done = run_cli("generate", "calm piano, 1 bar", "--out", str(tmp_path / "clip"), "--soundfont", str(bank),
                   "--seed", "1", "--quiet", timeout=300)
    assert done.returncode == 0, done.stderr
    sources = json.loads((tmp_path / "clip" / "spec.json").read_text())["sound"]["sources"]
    assert f"soundfont:{Path(bank).resolve()}" in sources.values(), sources


def test_continue_and_accompany_take_no_prompt(engine):
    take = engine.generate("calm piano, 2 bars", pb.Overrides(seed=5), session="no-prompt")
    continued = engine.call("Continue", pb.ContinueRequest(session="no-prompt", midi=take.midi, bars=1))
    accompanied = engine.call("Accompany", pb.AccompanyRequest(session="no-prompt", midi=take.midi, add=["bass"]))
    assert continued.take and accompanied.take


CHATTY_C = r"""
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void on_load(void) {
    for (int i = 0; i < 400000; i++) fputs("chatter chatter chatter chatter chatter chatter\n", stderr);
    fflush(stderr);
    for (;;) pause();  /* and hangs: the render is cut off at the engine's render timeout */
}
"""


def _temp_files(pid: int) -> dict[str, int]:
    """Regular files in the temp folder (deleted ones too) that process ``pid`` holds open, with their sizes."""
    found = {}
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
            if target.startswith(tempfile.gettempdir()) and target.endswith(" (deleted)"):
                found[target] = fd.stat().st_size
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="reads /proc (Linux)")
def test_a_chatty_plugins_stderr_is_not_kept_beyond_its_tail(tmp_path):
    folder = tmp_path / "plugins"
    binary = folder / "Chatty.vst3" / "Contents" / "x86_64-linux" / "Chatty.so"
    binary.parent.mkdir(parents=True)
    (tmp_path / "chatty.c").write_text(CHATTY_C)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(binary), str(tmp_path / "chatty.c")], check=True)
    with EngineProcess("--plugin-folder", str(folder), "--render-timeout", "10") as process, \
            EngineClient(process.target) as client:
        client.check()
        outcome: dict = {}

        def render() -> None:
            try:
                client.render(bytes(make_score(bars=1).dumps_midi()), plugins={"bass": str(folder / "Chatty.vst3")})
            except RequestRejected as error:
                outcome["error"] = error

        thread = threading.Thread(target=render)
        thread.start()
        time.sleep(6)  # the plugin has written its 19 MB and hangs
        held = {}
        for pid in [process.process.pid, *_children(process.process.pid)]:
            held.update(_temp_files(pid))
        thread.join(60)
        print(f"the plugin wrote 19 MB to stderr; temp files the engine and its workers hold: {held}")
        assert all(size <= config.RENDER_WORKER_STDERR_KEEP_BYTES for size in held.values()), held
        assert outcome["error"].code == grpc.StatusCode.DEADLINE_EXCEEDED, outcome


def test_a_full_sessions_database_is_resource_exhausted_in_one_line_and_the_engine_serves_on(tmp_path):
    from tests.tiny_disk import fill, tiny_disk

    with tiny_disk(tmp_path / "tiny") as disk:
        with EngineProcess("--state", str(disk / "state")) as process, EngineClient(process.target) as client:
            client.check()
            client.generate("calm piano, 1 bar", pb.Overrides(seed=1), session="full")
            fill(disk)
            code, text = _code(lambda: client.generate("calm piano, 1 bar", pb.Overrides(seed=2), session="full"))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "full" in text and "\n" not in text, (code, text)
            (disk / "filler").unlink()
            assert client.generate("calm piano, 1 bar", pb.Overrides(seed=3), session="full").take
            assert len(client.call("History", pb.HistoryRequest(session="full")).takes) == 2
