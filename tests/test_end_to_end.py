"""A prompt becomes a clip folder through a real `cadenza serve` process and the CLI."""
from __future__ import annotations

import io
import json
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile

from engine.music.theory import parse_key
from tests.conftest import run_cli

PROMPT = "Funky disco groove in E minor with slap bass, rhythm guitar and drums"


def _generate(engine_process, out: Path, *extra: str) -> None:
    result = run_cli("generate", PROMPT, "--out", str(out), "--engine", engine_process.target,
                     "--quiet", *extra)
    assert result.returncode == 0, result.stderr


def _meta(midi: mido.MidiFile, kind: str) -> list[mido.MetaMessage]:
    return [msg for track in midi.tracks for msg in track if msg.type == kind]


@pytest.fixture(scope="module")
def clip(engine_process, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clip")
    _generate(engine_process, out, "--tempo", "96", "--key", "G dorian", "--meter", "7/4", "--bars", "6",
              "--seed", "11")
    return out


def test_clip_mid_has_the_asked_tempo_meter_and_bars(clip: Path):
    midi = mido.MidiFile(clip / "clip.mid")
    assert midi.type == 1
    tempos = _meta(midi, "set_tempo")
    assert [round(mido.tempo2bpm(t.tempo), 3) for t in tempos] == [96.0]
    signatures = _meta(midi, "time_signature")
    assert [(s.numerator, s.denominator) for s in signatures] == [(7, 4)]
    bar_ticks = midi.ticks_per_beat * 7
    last_end = max(sum(msg.time for msg in track) for track in midi.tracks if len(track) > 3)
    assert 5 * bar_ticks < last_end <= 6 * bar_ticks + 1  # six bars, the last one sounding


def test_every_part_is_a_named_track_with_its_program_and_drums_on_channel_10(clip: Path):
    midi = mido.MidiFile(clip / "clip.mid")
    spec = json.loads((clip / "spec.json").read_text())
    names = [msg.name for track in midi.tracks for msg in track if msg.type == "track_name"]
    assert names == [p["name"] for p in spec["parts"]]
    for track, part in zip(midi.tracks, spec["parts"], strict=True):
        channels = {msg.channel for msg in track if msg.type == "note_on"}
        programs = {msg.program for msg in track if msg.type == "program_change"}
        if part["is_drum"]:
            assert channels == {9}
        else:
            assert 9 not in channels and programs == {part["program"]}
    assert {p["role"] for p in spec["parts"]} >= {"bass", "drums"}


def test_every_pitched_note_is_in_the_asked_scale(clip: Path):
    midi = mido.MidiFile(clip / "clip.mid")
    scale = set(parse_key("G dorian").scale_pcs())
    pitched = [msg.note for track in midi.tracks for msg in track
               if msg.type == "note_on" and msg.velocity > 0 and msg.channel != 9]
    assert pitched and {p % 12 for p in pitched} <= scale


def test_stems_are_equal_in_length_not_silent_and_span_the_clip(clip: Path):
    spec = json.loads((clip / "spec.json").read_text())
    expected_frames = round(6 * 7 * 60 / 96 * 48000)
    lengths = {}
    for part in spec["parts"]:
        audio, rate = soundfile.read(clip / "stems" / f"{part['name']}.wav")
        assert rate == 48000
        assert np.sqrt(np.mean(audio ** 2)) > 1e-3, f"stem {part['name']} is silent"
        lengths[part["name"]] = len(audio)
    mix, _ = soundfile.read(clip / "mix.wav")
    assert set(lengths.values()) == {len(mix)}
    assert abs(len(mix) - expected_frames) <= 1


def test_spec_json_records_where_each_field_came_from(clip: Path):
    spec = json.loads((clip / "spec.json").read_text())
    assert spec["tempo_bpm"] == 96 and spec["key"] == {"tonic": "G", "mode": "dorian"}
    assert spec["sources"]["tempo_bpm"] == "explicit"
    assert spec["sources"]["style"] == "inferred" and spec["style"] in ("disco", "funk")
    assert spec["sources"]["start_bar"] == "default"


def test_same_spec_and_seed_give_byte_identical_midi(engine_process, tmp_path: Path):
    _generate(engine_process, tmp_path / "a", "--seed", "5")
    _generate(engine_process, tmp_path / "b", "--seed", "5")
    _generate(engine_process, tmp_path / "c", "--seed", "6")
    a, b, c = ((tmp_path / d / "clip.mid").read_bytes() for d in "abc")
    assert a == b
    assert a != c


def test_generate_refuses_to_overwrite_an_existing_clip(engine_process, tmp_path: Path):
    _generate(engine_process, tmp_path, "--seed", "1")
    before = (tmp_path / "clip.mid").read_bytes()
    result = run_cli("generate", PROMPT, "--out", str(tmp_path), "--engine", engine_process.target, "--seed", "2")
    assert result.returncode != 0 and "--force" in result.stderr
    assert (tmp_path / "clip.mid").read_bytes() == before


def test_generate_starts_its_own_engine_when_none_is_named(tmp_path: Path):
    result = run_cli("generate", "slow piano ballad, 2 bars", "--out", str(tmp_path), "--seed", "3", "--quiet")
    assert result.returncode == 0, result.stderr
    midi = mido.MidiFile(file=io.BytesIO((tmp_path / "clip.mid").read_bytes()))
    assert any(msg.type == "note_on" for track in midi.tracks for msg in track)


def test_describe_json_shows_each_field_with_its_source(engine_process):
    result = run_cli("describe", "Upbeat ragtime piano in 7/4", "--json", "--engine", engine_process.target)
    assert result.returncode == 0, result.stderr
    spec = json.loads(result.stdout)
    assert spec["meter"] == {"numerator": 7, "denominator": 4}
    assert spec["sources"]["meter"] == "explicit"
    assert spec["sources"]["key"] == "default"
    assert spec["style"] == "ragtime"
