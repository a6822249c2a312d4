"""A SoundFont instrument: renders one track's notes through tinysoundfont."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import tinysoundfont

from plugin_host.instruments import TimedNote

SOUNDFONT_SUFFIXES = (".sf2", ".sf3")


def default_soundfont() -> Path:
    """The General MIDI SoundFont that ships inside the pretty_midi package."""
    return Path(str(resources.files("pretty_midi").joinpath("TimGM6mb.sf2")))


class SoundFontInstrument:
    """Plays General MIDI programs from one .sf2/.sf3 file."""

    def __init__(self, path: Path | None = None, sample_rate: int = 48000) -> None:
        self.path = Path(path) if path else default_soundfont()
        if not self.path.is_file():
            raise FileNotFoundError(f"SoundFont not found: {self.path} (give an existing .sf2 or .sf3 file)")
        if self.path.suffix.lower() not in SOUNDFONT_SUFFIXES:
            raise ValueError(f"SoundFont {self.path} is not a .sf2 or .sf3 file")
        self.sample_rate = sample_rate
        self.name = self.path.name

    def render(self, notes: list[TimedNote], frames: int, program: int = 0, is_drum: bool = False) -> np.ndarray:
        """Render ``notes`` into a (frames, 2) float32 buffer."""
        synth = tinysoundfont.Synth(samplerate=self.sample_rate)
        try:
            sfid = synth.sfload(str(self.path))
        except Exception as error:
            raise ValueError(f"SoundFont {self.path} could not be read: {error}") from None
        bank = 128 if is_drum else 0
        try:
            synth.program_select(0, sfid, bank, 0 if is_drum else program, is_drums=is_drum)
        except RuntimeError:  # the font lacks this preset: fall back to its first of the bank
            synth.program_select(0, sfid, bank, 0, is_drums=is_drum)
        events: list[tuple[int, int, int, int]] = []  # (frame, order, pitch, velocity); off before on
        for note in notes:
            events.append((round(note.start * self.sample_rate), 1, note.pitch, note.velocity))
            events.append((round(note.end * self.sample_rate), 0, note.pitch, 0))
        events.sort()
        out = np.zeros((frames, 2), dtype=np.float32)
        at = 0
        for frame, is_on, pitch, velocity in events:
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
