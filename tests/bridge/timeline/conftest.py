"""A synthetic clip folder, written the way `cadenza generate --at BAR` writes one.

Synthesised so every position is known exactly: each stem is silent except a full-scale
click on its first sample (the clip's first downbeat), and clip.mid's first note is on that
downbeat. Tests then place it and ask independent readers where the click and note landed.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import mido
import numpy as np
import pytest

from bridge.atomic import write_bytes
from bridge.bwf import write_bwf
from bridge.timeline.clip import MidiPart
from bridge.timeline.smf import clip_smf
from bridge.timeline.tempo_map import TempoMap

CLICK_LEVEL = 0.5


def make_clip(folder: Path, tempo_bpm: float = 120.0, meter: tuple[int, int] = (4, 4), bars: int = 2,
              start_bar: int = 1, sample_rate: int = 48000) -> Path:
    """Write a clip folder: parts "bass" (program 33) and "drums" (channel 10), each note on every beat."""
    spec = {"prompt": "test clicks", "tempo_bpm": tempo_bpm, "meter": {"numerator": meter[0], "denominator": meter[1]},
            "bars": bars, "start_bar": start_bar, "key": {"tonic": "C", "mode": "major"},
            "parts": [{"name": "bass", "program": 33, "is_drum": False},
                      {"name": "drums", "program": 0, "is_drum": True}],
            "style": "test", "seed": 0}
    own = TempoMap.constant(tempo_bpm, *meter)
    beats = int(bars * meter[0] * 4 / meter[1])
    parts = []
    for name, channel, program, pitch in (("bass", 0, 33, 36), ("drums", 9, 0, 38)):
        events = [(0.0, mido.Message("program_change", channel=channel, program=program))]
        for beat in range(beats):
            events.append((float(beat), mido.Message("note_on", channel=channel, note=pitch, velocity=100)))
            events.append((beat + 0.5, mido.Message("note_off", channel=channel, note=pitch, velocity=0)))
        parts.append(MidiPart(name, tuple(events)))
    frames = round(bars * meter[0] * 4 / meter[1] * 60 / tempo_bpm * sample_rate)
    position = own.bar_to_sample(start_bar, sample_rate)
    mix = np.zeros((frames, 2), dtype=np.float32)
    for name in ("bass", "drums"):
        audio = np.zeros((frames, 2), dtype=np.float32)
        audio[0, :] = CLICK_LEVEL
        mix += audio / 2
        write_bwf(folder / "stems" / f"{name}.wav", audio, sample_rate, position)
    write_bwf(folder / "mix.wav", mix, sample_rate, position)
    write_bytes(folder / "spec.json", json.dumps(spec).encode())
    write_bytes(folder / "clip.mid", clip_smf(own, parts, start_bar))
    return folder


@pytest.fixture()
def clip_folder(tmp_path: Path) -> Callable[..., Path]:
    """make_clip bound to a fresh folder under tmp_path: ``clip_folder(tempo_bpm=..., ...)``."""
    counter = [0]

    def make(**kwargs) -> Path:
        counter[0] += 1
        return make_clip(tmp_path / f"clip{counter[0]}", **kwargs)

    return make
