"""A SoundFont instrument: renders one track's notes through tinysoundfont."""
from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import tinysoundfont
from symusic import Track

from engine.errors import Cancelled


def default_soundfont() -> Path:
    """The General MIDI SoundFont that ships inside the pretty_midi package."""
    return Path(str(resources.files("pretty_midi").joinpath("TimGM6mb.sf2")))


class SoundFontInstrument:
    """Plays General MIDI programs from one .sf2/.sf3 file."""

    def __init__(self, path: Path | None = None, sample_rate: int = 48000) -> None:
        self.path = Path(path) if path else default_soundfont()
        if not self.path.is_file():
            raise FileNotFoundError(f"SoundFont not found: {self.path} (give an existing .sf2 or .sf3 file)")
        self.sample_rate = sample_rate

    def render(self, track: Track, note_seconds: list[tuple[float, float, int, int]], frames: int,
               should_stop: Callable[[], bool] | None = None) -> np.ndarray:
        """Render (start s, end s, pitch, velocity) notes into a (frames, 2) float32 buffer.

        ``should_stop`` is polled every few hundred events; when true the render ends with Cancelled.
        """
        synth = tinysoundfont.Synth(samplerate=self.sample_rate)
        sfid = synth.sfload(str(self.path))
        bank = 128 if track.is_drum else 0
        try:
            synth.program_select(0, sfid, bank, 0 if track.is_drum else track.program, is_drums=track.is_drum)
        except RuntimeError:  # the font lacks this preset: fall back to its first of the bank
            synth.program_select(0, sfid, bank, 0, is_drums=track.is_drum)
        events: list[tuple[int, int, int, int]] = []  # (frame, order, pitch, velocity); off before on
        for start, end, pitch, velocity in note_seconds:
            events.append((round(start * self.sample_rate), 1, pitch, velocity))
            events.append((round(end * self.sample_rate), 0, pitch, 0))
        events.sort()
        out = np.zeros((frames, 2), dtype=np.float32)
        at = 0
        for index, (frame, is_on, pitch, velocity) in enumerate(events):
            if should_stop and index % 256 == 0 and should_stop():
                raise Cancelled(f"render of {track.name!r} stopped")
            frame = min(frame, frames)
            if frame > at:
                out[at:frame] = _generate(synth, frame - at)
                at = frame
            if is_on:
                synth.noteon(0, pitch, velocity)
            else:
                synth.noteoff(0, pitch)
        if frames > at:
            out[at:frames] = _generate(synth, frames - at)
        return out


def _generate(synth: tinysoundfont.Synth, frames: int) -> np.ndarray:
    return np.frombuffer(synth.generate(frames), dtype=np.float32).reshape(-1, 2)
