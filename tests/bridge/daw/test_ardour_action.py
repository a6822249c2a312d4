"""The Ardour action "Cadenza: generate here" (bridge/daw/ardour_generate_here.lua) run by Ardour itself:
`ardour7-lua` loads a saved 96 BPM 3/4 session, puts the playhead inside bar 6 and runs the action,
which calls the real `cadenza` CLI against a real engine. The saved snapshot is then read back with
lxml, mido and soundfile (not Ardour): one MIDI track per part, each with a region at bar 6's sample
holding the clip's notes, and one audio track per stem, its region at the same sample playing the
stem's samples from the audio files Ardour wrote; and Ardour, loading that snapshot again, reports
every region at 6|1|0.

The action's stem player (bridge/daw/cadenza_stem_player.lua) is installed as a user would install it,
in Ardour's scripts folder of a config folder of the test's own ($XDG_CONFIG_HOME).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile
from lxml import etree

from bridge.timeline.ardour import (
    _LUA_PRELUDE,
    ARDOUR_TICKS_PER_BEAT,
    ArdourSession,
    _lua_string,
    region_positions_lua,
    run_lua,
    superclock,
)
from bridge.timeline.clip import read_clip
from bridge.timeline.notes import part_notes
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[3]
ACTION = ROOT / "bridge" / "daw" / "ardour_generate_here.lua"
STEM_PLAYER = ROOT / "bridge" / "daw" / "cadenza_stem_player.lua"
RATE = 48000
BPM, BEATS_PER_BAR = 96.0, 3  # 3/4: a bar is 3 quarter notes of 0.625 s
PLAYHEAD_S = 10.0  # 16 quarter notes in: bar 6, beat 2
BAR = 6
BARS = 2
SESSION = "ardour-action-song"  # the Ardour session's folder, and so the Cadenza session of its takes

pytestmark = [
    pytest.mark.ardour,
    pytest.mark.skipif(shutil.which("ardour7-lua") is None,
                       reason="Ardour 7 is not installed (apt-get install ardour); .ci/run installs it"),
]


def _bar_sample(bar: int) -> int:
    return round((bar - 1) * BEATS_PER_BAR * 60.0 / BPM * RATE)


def _make_session(folder: Path) -> None:
    run_lua(_LUA_PRELUDE.format(rate=RATE) + "\n".join([
        f"local s = create_session({_lua_string(str(folder))}, {_lua_string(folder.name)}, {RATE})",
        'assert(s, "could not create the session")',
        "local tm = Temporal.TempoMap.write_copy()",
        f"tm:set_tempo(Temporal.Tempo({BPM}, {BPM}, 4), Temporal.timepos_t(0))",
        f"tm:set_meter(Temporal.Meter({BEATS_PER_BAR}, 4), Temporal.timepos_t(0))",
        "Temporal.TempoMap.update(tm)",
        's:save_state("", false, false, false, false, false)',
        "close_session()",
        'print("CADENZA-OK")']) + "\n")


def _run_action(folder: Path, prompt: str, engine_target: str) -> str:
    """Load the session, place the playhead, run the action as Ardour would; save snapshot 'after'."""
    cadenza = f"{sys.executable} -m bridge.cli"
    playhead = round(PLAYHEAD_S * RATE)
    script = _LUA_PRELUDE.format(rate=RATE) + "\n".join([
        f"local s = load_session({_lua_string(str(folder))}, {_lua_string(folder.name)})",
        'assert(s, "could not load the session")',
        f"s:request_locate({playhead}, false, ARDOUR.LocateTransportDisposition.MustStop, "
        "ARDOUR.TransportRequestSource.TRS_UI)",
        f"for i = 1, 500 do if s:transport_sample() == {playhead} then break end ARDOUR.LuaAPI.usleep(10000) end",
        f"assert(s:transport_sample() == {playhead}, 'the playhead did not move')",
        "function ardour (info) end",  # the action's header, which Ardour's script manager reads
        f"dofile({_lua_string(str(ACTION))})",
        f"local done = factory({{prompt = {_lua_string(prompt)}, bars = '{BARS}', "
        f"cadenza = {_lua_string(cadenza)}, engine = {_lua_string(engine_target)}}})()",
        'print("CADENZA-DONE\\t" .. done.folder .. "\\t" .. #done.stems)',
        's:save_state("after", false, false, false, false, false)',
        "close_session()",
        'print("CADENZA-OK")']) + "\n"
    config = folder.parent / "config"  # Ardour's config folder, with the stem player installed as a user would
    (config / "ardour7" / "scripts").mkdir(parents=True, exist_ok=True)
    shutil.copy(STEM_PLAYER, config / "ardour7" / "scripts" / STEM_PLAYER.name)
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CONFIG_HOME=str(config))
    path = folder.parent / "action-run.lua"
    path.write_text(script)
    done = subprocess.run(["ardour7-lua", str(path)], capture_output=True, text=True, timeout=300, env=env,
                          stdin=subprocess.DEVNULL)
    assert "CADENZA-OK" in done.stdout, (done.stdout + done.stderr)[-3000:]
    return done.stdout


def _ardour_midi_notes(path: Path) -> list[tuple[float, int]]:
    """(start in quarter notes, pitch) of every note in an SMF Ardour wrote, read with mido."""
    smf = mido.MidiFile(str(path))
    notes = []
    for track in smf.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "note_on" and message.velocity > 0:
                notes.append((tick / smf.ticks_per_beat, message.note))
    return sorted(notes)


def test_the_action_adds_midi_and_stem_tracks_at_the_playheads_bar(tmp_path: Path, engine_process
                                                                              ) -> None:
    session = tmp_path / SESSION
    _make_session(session)
    out = _run_action(session, "funk groove with bass, electric piano and drums", engine_process.target)
    line = next(line for line in out.splitlines() if line.startswith("CADENZA-DONE"))
    _, clip_folder, stem_tracks = line.split("\t")

    # The take is recorded in the Cadenza session named after the Ardour session's folder.
    history = run_cli("history", "--session", SESSION, "--json", "--engine", engine_process.target)
    assert history.returncode == 0, history.stderr
    assert [take["operation"] for take in json.loads(history.stdout)["takes"]] == ["generate"]

    # The clip was made for the session's tempo, meter, sample rate and the playhead's bar.
    spec = json.loads((Path(clip_folder) / "spec.json").read_text())
    assert (spec["tempo_bpm"], spec["meter"]["numerator"], spec["meter"]["denominator"]) == (BPM, 3, 4)
    assert (spec["start_bar"], spec["bars"]) == (BAR, BARS)
    clip = read_clip(Path(clip_folder))
    assert len(clip.parts) >= 2

    # The saved snapshot, read with lxml: one MIDI track per part, its region at bar 6's sample.
    root = etree.parse(str(session / "after.ardour")).getroot()
    at, length = superclock(_bar_sample(BAR), RATE), superclock(_bar_sample(BAR + BARS) - _bar_sample(BAR), RATE)
    sources = {source.get("id"): source.get("name") for source in root.iterfind("Sources/Source")}
    playlists = {playlist.get("id"): playlist for playlist in root.iterfind("Playlists/Playlist")}
    for part in clip.parts:
        route = next((r for r in root.iterfind("Routes/Route") if r.get("name") == f"cadenza {part.name}"), None)
        assert route is not None, f"no track 'cadenza {part.name}'"
        assert route.get("default-type") == "midi"
        regions = playlists[route.get("midi-playlist")].findall("Region")
        assert len(regions) == 1
        assert regions[0].get("length") == f"a{length}@a{at}"
        # Its notes, read from the SMF Ardour wrote, are the clip's (start in beats from the region's start).
        smf = session / "interchange" / SESSION / "midifiles" / sources[regions[0].get("source-0")]
        expected = [(start, pitch) for start, _, pitch, _, _ in part_notes(part)]
        written = _ardour_midi_notes(smf)
        assert expected and sorted(p for _, p in written) == sorted(p for _, p in expected)
        for pitch in {p for _, p in expected}:  # pitch by pitch, so notes a tick apart cannot swap places
            starts = sorted(s for s, p in written if p == pitch)
            wanted = sorted(s for s, p in expected if p == pitch)
            # Ardour keeps note times in ticks of 1/1920 quarter note
            assert all(abs(a - b) <= 1 / ARDOUR_TICKS_PER_BEAT + 1e-9 for a, b in zip(starts, wanted, strict=True))

    # One audio track per stem, its region at bar 6's sample; the audio files Ardour wrote for it (one per
    # channel), read with soundfile, hold the stem's samples.
    assert clip.stems and int(stem_tracks) == len(clip.stems)
    for stem_file in clip.stems:
        name = stem_file.name
        route = next((r for r in root.iterfind("Routes/Route") if r.get("name") == f"cadenza {name} stem"), None)
        assert route is not None, f"no track 'cadenza {name} stem'"
        assert route.get("default-type") == "audio"
        regions = playlists[route.get("audio-playlist")].findall("Region")
        assert len(regions) == 1
        stem, stem_rate = soundfile.read(stem_file.path, dtype="float32")
        assert stem_rate == RATE and stem.shape[1] == 2
        assert regions[0].get("length") == f"a{superclock(len(stem), RATE)}@a{at}"
        for channel in range(2):
            written, written_rate = soundfile.read(
                session / "interchange" / SESSION / "audiofiles" / sources[regions[0].get(f"source-{channel}")],
                dtype="float32")
            assert written_rate == RATE and written.shape == (len(stem),)
            assert np.abs(stem[:, channel]).max() > 0.01  # the comparison below is not of silence
            # Ardour's convolver played the stem into the bounce: equal but for float rounding
            assert np.abs(written - stem[:, channel]).max() < 1e-5

    # Ardour, loading the snapshot again, puts every cadenza region at 6|1|0.
    seen = run_lua(region_positions_lua(ArdourSession(session, "after"), RATE))
    regions = [line.split("\t") for line in seen.splitlines() if line.startswith("REGION cadenza ")]
    assert len(regions) == len(clip.parts) + len(clip.stems)
    assert {(int(position), bbt) for _, position, _, bbt in regions} == {(_bar_sample(BAR), f"{BAR}|1|0")}


def test_the_reaper_script_is_valid_lua_but_is_not_run_here() -> None:
    """REAPER cannot be installed here: bridge/daw/reaper_generate_here.lua is only parsed (by Ardour's Lua
    5.3), never run. Its `cadenza generate`/`cadenza notes` calls are the ones the Ardour test runs."""
    script = ROOT / "bridge" / "daw" / "reaper_generate_here.lua"
    out = run_lua(_LUA_PRELUDE.format(rate=RATE) + "\n".join([
        f"local chunk, problem = loadfile({_lua_string(str(script))})",
        'assert(chunk, "the ReaScript does not parse: " .. tostring(problem))',
        'print("CADENZA-OK")']) + "\n")
    assert "CADENZA-OK" in out
