"""A SoundFont instrument: renders one track's notes through tinysoundfont.

A loaded SoundFont is kept per process and file (a large bank such as FluidR3 GM takes about
0.4 s and 450 MB to load), and one synth per file plays every part that uses it, one part at a
time under a lock: playing notes costs milliseconds, so the renderer's threads spend their time
in the effect chains instead.
"""
from __future__ import annotations

import threading
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
        loaded = _loaded(self.path, self.sample_rate)
        with loaded.lock:
            try:
                lead = _silent_lead(loaded, notes, self.sample_rate, program, is_drum)
                out = _play(loaded.synth, loaded.sfid, notes, frames + lead, self.sample_rate, program, is_drum)
            finally:
                _settle(loaded.synth, self.sample_rate)
        return out[lead:]


class _Loaded:
    """A SoundFont loaded into a tinysoundfont synth, with the lock its users take turns on."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        self.synth = tinysoundfont.Synth(samplerate=sample_rate)
        try:
            self.sfid = self.synth.sfload(str(path))
        except Exception as error:
            raise ValueError(f"SoundFont {path} could not be read: {error}") from None
        self.lock = threading.Lock()


_cache: dict[tuple[Path, int, int], _Loaded] = {}
_cache_lock = threading.Lock()


def _loaded(path: Path, sample_rate: int) -> _Loaded:
    """The process's synth for this file and rate, loading it on first use (and again if the file changed)."""
    key = (path.resolve(), path.stat().st_mtime_ns, sample_rate)
    with _cache_lock:
        if key not in _cache:
            for old in [k for k in _cache if k[0] == key[0] and k[2] == sample_rate]:
                del _cache[old]
            _cache[key] = _Loaded(path, sample_rate)
        return _cache[key]


SETTLE_SECONDS = 0.05  # after sounds_off, voices fade for 10 ms; run past that so every voice is free


def _settle(synth: tinysoundfont.Synth, sample_rate: int) -> None:
    """Stop every voice and let the quick release run out, so the next part starts from the state a fresh
    synth has (the same voices in the same order: renders are then identical to the sample)."""
    synth.sounds_off()
    synth.generate(round(SETTLE_SECONDS * sample_rate))


MAX_LEAD_SECONDS = 0.005  # sample padding longer than this is left alone (it may be meant)
KEEP_LEAD_SECONDS = 0.00025  # ... and this much of it is kept (a quarter of a millisecond)


def _silent_lead(loaded: _Loaded, notes: list[TimedNote], sample_rate: int, program: int, is_drum: bool) -> int:
    """Frames of digital silence before the part's first note sounds, from a probe of that note played
    exactly as the render will play it (fresh synth state, frame 0), up to MAX_LEAD_SECONDS, less
    KEEP_LEAD_SECONDS. The render is shifted by it, so the first note sounds at its time (FluidR3's piano
    starts 64 frames late: its envelope opens from zero and tinysoundfont updates envelopes every 64
    frames). Later notes are not corrected: tinysoundfont starts some of them up to a few milliseconds
    late, depending on its state."""
    if not notes:
        return 0
    first = min(notes, key=lambda note: note.start)
    if first.start > 0:
        return 0
    probe_frames = round(MAX_LEAD_SECONDS * sample_rate) + 1
    probe = _play(loaded.synth, loaded.sfid, [TimedNote(0.0, 1.0, first.pitch, first.velocity)], probe_frames,
                  sample_rate, program, is_drum)
    _settle(loaded.synth, sample_rate)
    sounding = np.flatnonzero(np.abs(probe).max(axis=1) > 0)
    lead = int(sounding[0]) if sounding.size and sounding[0] < probe_frames - 1 else 0
    # keep KEEP_LEAD_SECONDS of it: the first block may open with a step, which must not land on
    # sample 0, where a looped clip joins its own end
    return max(0, lead - round(KEEP_LEAD_SECONDS * sample_rate))


def _play(synth: tinysoundfont.Synth, sfid: int, notes: list[TimedNote], frames: int, sample_rate: int,
          program: int, is_drum: bool) -> np.ndarray:
    """``notes`` on channel 0 of ``synth`` at ``program``, as a (frames, 2) buffer; a drum part's program is
    its kit (General MIDI 2: 0 standard, 8 room, 16 power, 24 electronic, 25 TR-808, 32 jazz, 40 brush)."""
    bank = 128 if is_drum else 0
    if program and synth.sfpreset_name(sfid, bank, program) is None:
        program = 0  # the font lacks this preset (a kit beyond its standard one): its first of the bank, not silence
    try:
        synth.program_select(0, sfid, bank, program, is_drums=is_drum)
    except RuntimeError:
        synth.program_select(0, sfid, bank, 0, is_drums=is_drum)
    events: list[tuple[int, int, int, int]] = []  # (frame, order, pitch, velocity); off before on
    for note in notes:
        events.append((round(note.start * sample_rate), 1, note.pitch, note.velocity))
        events.append((round(note.end * sample_rate), 0, note.pitch, 0))
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
