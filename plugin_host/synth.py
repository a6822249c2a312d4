"""Synthesised instruments: FAUST voices compiled and played by DawDreamer, offline and headless.

Each voice is a polyphonic FAUST program in plugin_host/data/synths/ (supersaw, reese, acid, pad,
pulse, triangle, 808/909/chip drum kits); ``common.lib`` there gives them the note inputs DawDreamer
drives (freq, gain, gate) and small shared building blocks. Which voice plays which part is data
(plugin_host/data/sounds.toml, read by plugin_host/sounds.py).

FAUST code is compiled to machine code by DawDreamer's LLVM backend (about 60 ms a voice), so a
process keeps each compiled voice and reuses it: a render worker compiles a voice once. All DawDreamer
work runs on one thread of its own: a voice compiled on one thread and another compiled from the
same FAUST code on a different thread hung DawDreamer 0.9.0 here. Rendering is fast (seconds of
audio in tens of milliseconds), so the renderer's threads spend their time in the effect chains.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from plugin_host.instruments import PluginError, TimedNote

BLOCK_SIZE = 256
KIT_HIT_SECONDS = 3.0     # how long one drum hit is rendered for before its tail is trimmed
KIT_FLOOR = 10 ** (-90 / 20)  # a hit's tail is trimmed where it stays under this (-90 dBFS)
KIT_FADE_SECONDS = 0.05   # a hit still ringing at KIT_HIT_SECONDS fades out over its last this-many seconds
DEFAULT_VOICES = 16
RELEASE_SECONDS = 1.5  # how long a voice may ring after its note-off before it is freed


@dataclass(frozen=True)
class Voice:
    """A synth voice as data: its FAUST file, polyphony and parameter values."""

    name: str
    dsp: str
    kit: bool = False  # a drum kit: each drum note's hit is rendered once and placed per note
    voices: int = DEFAULT_VOICES
    params: tuple[tuple[str, float], ...] = ()
    description: str = ""
    pans: tuple[tuple[int, float], ...] = ()  # a kit's pieces in the stereo field: (drum note, -1..1)


def voice_names() -> tuple[str, ...]:
    """The FAUST programs shipped in plugin_host/data/synths/."""
    folder = resources.files("plugin_host.data").joinpath("synths")
    return tuple(sorted(entry.name.removesuffix(".dsp") for entry in folder.iterdir() if entry.name.endswith(".dsp")))


@cache
def faust_code(dsp: str) -> str:
    """The voice's FAUST program with the shared library in front of it."""
    folder = resources.files("plugin_host.data").joinpath("synths")
    if f"{dsp}.dsp" not in {entry.name for entry in folder.iterdir()}:
        raise PluginError(f"synth:{dsp}", f"no such synth voice (shipped: {', '.join(voice_names())})")
    return folder.joinpath("common.lib").read_text() + "\n" + folder.joinpath(f"{dsp}.dsp").read_text()


class _Compiled:
    """One compiled voice in its own DawDreamer engine, reused render after render."""

    def __init__(self, voice: Voice, sample_rate: int) -> None:
        import dawdreamer

        self.sample_rate = sample_rate
        self.engine = dawdreamer.RenderEngine(sample_rate, BLOCK_SIZE)
        self.processor = self.engine.make_faust_processor(voice.name)
        self.processor.num_voices = voice.voices
        self.processor.release_length = RELEASE_SECONDS
        if not self.processor.set_dsp_string(faust_code(voice.dsp)):
            raise PluginError(f"synth:{voice.name}", "its FAUST program did not compile")
        self.processor.compile()
        self.params = dict(voice.params)
        self.engine.load_graph([(self.processor, [])])

    def render(self, notes: list[TimedNote], frames: int) -> np.ndarray:
        processor = self.processor
        processor.clear_midi()
        for note in notes:
            processor.add_midi_note(int(note.pitch), int(max(1, min(127, note.velocity))), float(note.start),
                                    float(max(note.end - note.start, 1.0 / self.sample_rate)))
        self._set_params()
        self.engine.render(frames / self.sample_rate)
        audio = np.asarray(self.processor.get_audio(), dtype=np.float32).T
        out = np.zeros((frames, 2), dtype=np.float32)
        out[:min(frames, len(audio))] = audio[:frames, :2]
        processor.clear_midi()
        return out

    def _set_params(self) -> None:
        if not self.params:
            return
        described = {entry["label"]: entry["index"] for entry in self.processor.get_parameters_description()}
        for key, value in self.params.items():
            if key in described:
                self.processor.set_parameter(described[key], float(value))


_compiled: dict[tuple[Voice, int], _Compiled] = {}
_faust_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faust")  # every DawDreamer call runs here


def velocity_curve(velocity: int) -> float:
    """The level a velocity plays at, as common.lib's ``velocity_curve`` computes it from gain = velocity / 127."""
    gain = max(0, min(127, velocity)) / 127.0
    return gain * gain * 0.6 + gain * 0.4


_hits: dict[tuple[Voice, int, int], np.ndarray] = {}


def _hit(compiled: _Compiled, voice: Voice, pitch: int) -> np.ndarray:
    """One hit of a kit's drum note at full velocity, trimmed where its tail falls under KIT_FLOOR (faded
    over KIT_FADE_SECONDS when it rings for all of KIT_HIT_SECONDS)."""
    key = (voice, compiled.sample_rate, pitch)
    if key not in _hits:
        frames = round(KIT_HIT_SECONDS * compiled.sample_rate)
        # held for the whole render: kits ignore note-offs, and a released voice is freed RELEASE_SECONDS later
        audio = compiled.render([TimedNote(0.0, KIT_HIT_SECONDS, pitch, 127)], frames)
        loud = np.flatnonzero(np.abs(audio).max(axis=1) > KIT_FLOOR)
        hit = audio[:int(loud[-1]) + 1 if loud.size else 0].copy()
        if len(hit) == frames:  # still ringing: fade rather than stop on a step
            fade = min(frames, round(KIT_FADE_SECONDS * compiled.sample_rate))
            hit[frames - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
        _hits[key] = hit
    return _hits[key]


def _place_hits(compiled: _Compiled, voice: Voice, notes: list[TimedNote], frames: int) -> np.ndarray:
    """A kit's part: each note's pre-rendered hit added at its start, scaled by its velocity."""
    out = np.zeros((frames, 2), dtype=np.float32)
    full = velocity_curve(127)
    pans = dict(voice.pans)
    for note in notes:
        hit = _hit(compiled, voice, int(note.pitch))
        start = round(note.start * compiled.sample_rate)
        if start >= frames or hit.size == 0:
            continue
        length = min(len(hit), frames - start)
        angle = (pans.get(int(note.pitch), 0.0) + 1.0) * math.pi / 4.0  # constant power, 1.0 each at the centre
        place = np.array([math.cos(angle), math.sin(angle)], dtype=np.float32) * np.float32(math.sqrt(2.0))
        out[start:start + length] += hit[:length] * place * np.float32(velocity_curve(note.velocity) / full)
    return out


class SynthInstrument:
    """Plays a track's notes on one synth voice; stereo out, sample 0 = time 0."""

    def __init__(self, voice: Voice, sample_rate: int = 48000) -> None:
        self.voice = voice
        self.sample_rate = sample_rate
        self.name = f"synth:{voice.name}"

    def render(self, notes: list[TimedNote], frames: int, program: int = 0, is_drum: bool = False) -> np.ndarray:
        return _faust_thread.submit(self._render, notes, frames).result()

    def _render(self, notes: list[TimedNote], frames: int) -> np.ndarray:
        key = (self.voice, self.sample_rate)
        compiled = _compiled.get(key)
        if compiled is None:
            compiled = _compiled[key] = _Compiled(self.voice, self.sample_rate)
        if self.voice.kit:
            return _place_hits(compiled, self.voice, notes, frames)
        return compiled.render(notes, frames)
