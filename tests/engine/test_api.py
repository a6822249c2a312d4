"""The Python API: `engine.generate()` without a server, and the README's example run as written."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import mido
import pytest
import soundfile

import engine
from engine.errors import SpecError

ROOT = Path(__file__).resolve().parents[2]


def test_generate_returns_a_clip_with_the_spec_the_overrides_asked_for() -> None:
    clip = engine.generate("calm folk tune on a flute", bars=4, seed=3, tempo_bpm=90, key="D minor", meter="3/4")
    assert (clip.spec.bars, clip.spec.tempo_bpm, str(clip.spec.key), str(clip.spec.meter)) == (4, 90, "D minor", "3/4")
    midi = mido.MidiFile(file=__import__("io").BytesIO(clip.midi_bytes()))
    assert any(m.type == "note_on" and m.velocity for track in midi.tracks for m in track)
    assert clip.score.tracks, "the Score has no tracks"


def test_generate_names_an_unknown_override() -> None:
    with pytest.raises(SpecError, match="tempo: is not an override; accepted: tempo_bpm"):
        engine.generate("folk tune", tempo=90)


def test_write_puts_midi_spec_stems_and_mix_in_the_folder(tmp_path: Path) -> None:
    clip = engine.generate("folk tune on a flute with a bass", bars=2, seed=1)
    clip.render(isolate=False)
    written = clip.write(tmp_path / "clip")
    names = {p.relative_to(tmp_path / "clip").as_posix() for p in written}
    assert {"clip.mid", "spec.json", "mix.wav"} <= names
    assert {f"stems/{part.name}.wav" for part in clip.spec.parts} <= names
    info = soundfile.info(tmp_path / "clip" / "mix.wav")
    assert info.samplerate == 48000 and info.subtype == "PCM_24"


def test_the_readme_python_example_runs_as_written(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"## Python API.*?```python\n(.*?)```", readme, re.S)
    assert example, "README has no Python API example"
    code = example.group(1)
    assert len(code.strip().splitlines()) <= 3
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, timeout=600)
    assert (tmp_path / "out" / "ragtime" / "clip.mid").is_file()
    assert (tmp_path / "out" / "ragtime" / "mix.wav").is_file()


def test_import_engine_loads_no_torch() -> None:
    code = "import sys, engine, engine.music; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"
