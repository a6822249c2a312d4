"""Real VST3 plug-ins through pedalboard: Cadenza's own CadenzaSynth (instrument) and CadenzaDrive (effect).

They are compiled from C++ here (tests/plugins/, no SDK: the VST3 binary interface is declared by
hand), because Debian packages no VST3 plug-in and pedalboard on Linux loads VST3 only. Every
render goes through the worker process, as the engine's does: MIDI in, audio out whose pitch is
the played note's, presets from plugin_host/data that change the sound measurably, and the CLI
(`cadenza generate --plugin ROLE=PATH --preset ROLE=NAME`) writing a stem made by the plug-in.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile
from symusic import Note, Score, Tempo, TimeSignature, Track

from plugin_host.instruments import (
    PluginError,
    apply_preset,
    load_plugin,
    load_preset,
    plugin_preset,
    preset_names,
    save_preset,
)
from plugin_host.render import RenderOptionError, render
from tests.conftest import run_cli
from tests.plugin_host.clip_scores import ROLES, make_score

RATE = 48000


def _one_part(pitch: int, bars: int = 2, tempo: float = 120.0) -> Score:
    """One "keys" track holding ``pitch`` for the first bar and a half."""
    score = Score(480)
    score.tempos.append(Tempo(0, qpm=tempo))
    score.time_signatures.append(TimeSignature(0, 4, 4))
    track = Track(name="keys", program=0)
    track.notes.append(Note(0, 480 * 6, pitch, 100))
    score.tracks.append(track)
    return score


def _peak_hz(audio: np.ndarray, start: int, stop: int) -> float:
    mono = audio[start:stop].mean(axis=1)
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono)), n=8 * len(mono)))
    return float(np.argmax(spectrum) * RATE / (8 * len(mono)))


def _centroid_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio.mean(axis=1)))
    freqs = np.fft.rfftfreq(len(audio), 1 / RATE)
    return float((spectrum * freqs).sum() / spectrum.sum())


def test_our_plugins_load_as_an_instrument_and_an_effect(cadenza_plugins, tmp_path):
    synth = load_plugin(cadenza_plugins["CadenzaSynth"])
    drive = load_plugin(cadenza_plugins["CadenzaDrive"])
    assert synth.is_instrument and not synth.is_effect
    assert drive.is_effect and not drive.is_instrument
    assert list(synth.parameters) == ["gain_db", "cutoff_hz", "attack_s", "release_s"]
    assert list(drive.parameters) == ["drive_db", "tone_hz", "output_db"]
    assert synth.parameters["cutoff_hz"].raw_value == pytest.approx(0.6)  # the plug-in's default
    # a preset saved from the plug-in, changed on disk, loaded back: the plug-in takes the new values
    preset = tmp_path / "preset.json"
    save_preset(synth, preset)
    data = json.loads(preset.read_text())
    data["parameters"]["cutoff_hz"] = 0.25
    preset.write_text(json.dumps(data))
    apply_preset(synth, load_preset(preset))
    assert plugin_preset(synth)["parameters"]["cutoff_hz"] == pytest.approx(0.25)
    assert preset_names(cadenza_plugins["CadenzaSynth"]) == ["bright", "mellow"]
    assert preset_names(cadenza_plugins["CadenzaDrive"]) == ["crunch"]


@pytest.mark.parametrize("pitch", [45, 57, 69, 76])
def test_a_note_through_the_synth_sounds_at_its_pitch(cadenza_plugins, pitch):
    stems = render(_one_part(pitch), RATE, plugins={"keys": str(cadenza_plugins["CadenzaSynth"])},
                   roles={"keys": "keys"}, bars=2, effects_on=False)
    keys = stems.parts["keys"]
    assert np.isfinite(keys).all() and np.abs(keys).max() > 0.05
    expected = 440.0 * 2 ** ((pitch - 69) / 12)
    peak = _peak_hz(keys, RATE // 10, RATE)  # 0.1 s to 1 s: the held note, past its attack
    print(f"MIDI {pitch}: expected {expected:.1f} Hz, FFT peak {peak:.1f} Hz")
    assert peak == pytest.approx(expected, rel=0.01)
    # the note starts at sample 0 and is released at 3 s; bar 2 ends at 4 s in silence
    assert np.abs(keys[:RATE // 100]).max() > 0.01
    assert np.abs(keys[int(3.9 * RATE):]).max() < 1e-3


def test_presets_shipped_as_data_change_the_sound(cadenza_plugins):
    score = _one_part(57)
    synth = {"keys": str(cadenza_plugins["CadenzaSynth"])}
    sounds = {name: render(score, RATE, plugins=synth, presets={"keys": name}, roles={"keys": "keys"}, bars=2,
                           effects_on=False).parts["keys"] for name in ("bright", "mellow")}
    bright, mellow = (_centroid_hz(sounds[name][: 3 * RATE]) for name in ("bright", "mellow"))
    print(f"spectral centroid: bright {bright:.0f} Hz, mellow {mellow:.0f} Hz")
    assert bright > 2 * mellow
    # mellow's slow attack (~0.1 s): its first 10 ms are far quieter, relative to the held note
    def attack(audio: np.ndarray) -> float:
        return float(np.sqrt(np.mean(audio[: RATE // 100] ** 2)) / np.sqrt(np.mean(audio[RATE // 2: RATE] ** 2)))
    assert attack(sounds["mellow"]) < 0.5 * attack(sounds["bright"])
    with pytest.raises(RenderOptionError, match=r"presets.*no such preset.*bright, mellow"):
        render(score, RATE, plugins=synth, presets={"keys": "shiny"})


def test_an_effect_plugin_joins_a_roles_chain(cadenza_plugins):
    score = make_score(bars=2)
    plain = render(score, RATE, roles=ROLES, effects_on=False)
    driven = render(score, RATE, roles=ROLES, effects_on=False, plugins={"bass": str(cadenza_plugins["CadenzaDrive"])},
                    presets={"bass": "crunch"})

    def crest(audio: np.ndarray) -> float:
        return float(np.abs(audio).max() / np.sqrt(np.mean(audio ** 2)))

    print(f"bass crest factor: plain {crest(plain.parts['bass']):.2f}, driven {crest(driven.parts['bass']):.2f}; "
          f"centroid {_centroid_hz(plain.parts['bass']):.0f} -> {_centroid_hz(driven.parts['bass']):.0f} Hz")
    assert crest(driven.parts["bass"]) < 0.8 * crest(plain.parts["bass"])  # soft clipping flattens the peaks
    np.testing.assert_array_equal(driven.parts["drums"] != 0, plain.parts["drums"] != 0)  # other parts untouched
    with pytest.raises(PluginError, match="is an effect, not an instrument"):
        from plugin_host.instruments import PluginInstrument
        PluginInstrument(load_plugin(cadenza_plugins["CadenzaDrive"]), RATE)


def test_generate_renders_a_part_with_the_vst3_synth_from_the_command_line(cadenza_plugins, tmp_path):
    out = tmp_path / "clip"
    done = run_cli("generate", "4 bars of pop", "--out", str(out), "--seed", "3", "--quiet",
                   "--plugin", f"chords={cadenza_plugins['CadenzaSynth']}", "--preset", "chords=bright",
                   "--plugin", f"bass={cadenza_plugins['CadenzaDrive']}", "--preset", "bass=crunch", timeout=300)
    assert done.returncode == 0, done.stderr
    spec = json.loads((out / "spec.json").read_text())
    chords = next(part["name"] for part in spec["parts"] if part["role"] == "chords")
    with_synth, rate = soundfile.read(out / "stems" / f"{chords}.wav")
    assert rate == RATE and np.isfinite(with_synth).all() and np.abs(with_synth).max() > 0.05
    # the same clip without the plug-in: the chords stem is a different sound (the SoundFont piano)
    plain = tmp_path / "plain"
    assert run_cli("generate", "4 bars of pop", "--out", str(plain), "--seed", "3", "--quiet",
                   timeout=300).returncode == 0
    piano, _ = soundfile.read(plain / "stems" / f"{chords}.wav")
    assert piano.shape == with_synth.shape
    assert not np.allclose(piano, with_synth, atol=1e-3)


def test_the_worker_keeps_the_plugin_loaded_and_reloads_it_when_the_preset_changes(cadenza_plugins, tmp_path):
    """Plugins stay loaded in the persistent worker between renders: the same render twice is the same
    audio; an edited preset file (newer modification time) is loaded afresh and changes the sound."""
    score = _one_part(57)
    synth = {"keys": str(cadenza_plugins["CadenzaSynth"])}
    preset = tmp_path / "keys.json"
    preset.write_text(json.dumps({"name": "CadenzaSynth", "parameters": {"cutoff_hz": 0.9}}))

    def keys() -> np.ndarray:
        return render(score, RATE, plugins=synth, presets={"keys": str(preset)}, roles={"keys": "keys"}, bars=2,
                      effects_on=False).parts["keys"]

    first, second = keys(), keys()
    np.testing.assert_array_equal(first, second)
    preset.write_text(json.dumps({"name": "CadenzaSynth", "parameters": {"cutoff_hz": 0.3}}))
    os.utime(preset, ns=(preset.stat().st_atime_ns, preset.stat().st_mtime_ns + 10**9))
    darker = keys()
    assert _centroid_hz(darker[: 3 * RATE]) < 0.7 * _centroid_hz(first[: 3 * RATE])
