"""A clip folder read back: its spec, its MIDI parts in clip beats, its stems and mix.

The folder is what `cadenza generate` writes (clip.mid, stems/<part>.wav, mix.wav, spec.json).
clip.mid holds the clip at its bar (``spec.start_bar``) under the spec's constant tempo, so
reading it subtracts that bar's beat: every event here is in quarter notes from the clip's
first downbeat, ready to be placed at any bar of any tempo map.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import mido
import soundfile

from bridge.timeline.errors import TimelineError
from bridge.timeline.tempo_map import TempoMap

# Meta events that belong to the project's tempo map, not to a part: the project supplies them.
CONDUCTOR_META = frozenset({"set_tempo", "time_signature", "key_signature", "smpte_offset", "end_of_track"})


class ClipFolderError(TimelineError, ValueError):
    """A clip folder that is missing a file or holds one that cannot be read."""


@dataclass(frozen=True)
class MidiPart:
    """One MIDI track of a clip: its name and its events at beats from the clip's first downbeat."""

    name: str
    events: tuple[tuple[float, mido.Message | mido.MetaMessage], ...]


@dataclass(frozen=True)
class Stem:
    """One audio file of a clip (a part's stem or the mix)."""

    name: str
    path: Path
    sample_rate: int
    frames: int
    channels: int


@dataclass(frozen=True)
class Clip:
    """Everything a clip folder holds, in the units the exporters need."""

    folder: Path
    spec: dict
    parts: tuple[MidiPart, ...]
    stems: tuple[Stem, ...]
    mix: Stem | None

    @property
    def tempo_map(self) -> TempoMap:
        """The clip's own tempo: constant, from its spec (used when a project has none)."""
        meter = self.spec["meter"]
        return TempoMap.constant(float(self.spec["tempo_bpm"]), int(meter["numerator"]), int(meter["denominator"]))

    @property
    def start_bar(self) -> int:
        return int(self.spec.get("start_bar") or 1)

    @property
    def beats(self) -> float:
        """Length of the clip in quarter notes."""
        meter = self.spec["meter"]
        return int(self.spec["bars"]) * int(meter["numerator"]) * 4.0 / int(meter["denominator"])

    @property
    def seconds(self) -> float:
        """Length of the clip at its own tempo: what the stems hold (before any tail)."""
        return self.beats * 60.0 / float(self.spec["tempo_bpm"])

    @property
    def name(self) -> str:
        return self.folder.resolve().name


def midi_parts(data: bytes, offset_beats: float = 0.0) -> tuple[MidiPart, ...]:
    """The part tracks of SMF ``data``, events in beats minus ``offset_beats``; tempo-map meta dropped."""
    smf = mido.MidiFile(file=io.BytesIO(data))
    parts = []
    for index, track in enumerate(smf.tracks):
        name, events, tick = f"track {index + 1}", [], 0
        for message in track:
            tick += message.time
            if message.is_meta and message.type == "track_name":
                name = message.name
            elif not (message.is_meta and message.type in CONDUCTOR_META):
                events.append((tick / smf.ticks_per_beat - offset_beats, message.copy(time=0)))
        if any(not m.is_meta for _, m in events):
            parts.append(MidiPart(name, tuple(events)))
    return tuple(parts)


def _stem(name: str, path: Path) -> Stem:
    try:
        info = soundfile.info(str(path))
    except RuntimeError as error:
        raise ClipFolderError(f"{path} is not a readable WAV file: {error}") from None
    return Stem(name, path, int(info.samplerate), int(info.frames), int(info.channels))


def read_clip(folder: Path) -> Clip:
    """Read a clip folder; ClipFolderError says which file is missing or unreadable."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ClipFolderError(f"{folder} is not a folder; pass a clip folder written by `cadenza generate --out`")
    for required in ("spec.json", "clip.mid"):
        if not (folder / required).is_file():
            raise ClipFolderError(f"{folder} has no {required}; a clip folder holds clip.mid, spec.json, "
                                  "mix.wav and stems/<part>.wav")
    try:
        spec = json.loads((folder / "spec.json").read_text())
        meter = spec["meter"]
        tempo = TempoMap.constant(float(spec["tempo_bpm"]), int(meter["numerator"]), int(meter["denominator"]))
        int(spec["bars"])
    except (ValueError, KeyError, TypeError) as error:
        raise ClipFolderError(f"{folder / 'spec.json'} is not a clip spec (needs tempo_bpm, meter, bars): "
                              f"{error}") from None
    offset = tempo.bar_to_beat(int(spec.get("start_bar") or 1))
    try:
        parts = midi_parts((folder / "clip.mid").read_bytes(), offset)
    except (OSError, ValueError, EOFError) as error:
        raise ClipFolderError(f"{folder / 'clip.mid'} is not a readable Standard MIDI File: {error}") from None
    early = [part.name for part in parts if any(beat < -1e-9 for beat, _ in part.events)]
    if early:
        raise ClipFolderError(f"{folder / 'clip.mid'} has events of {', '.join(early)} before bar "
                              f"{spec.get('start_bar') or 1}, where spec.json says the clip starts; clip.mid "
                              "must hold the clip at that bar (as `cadenza generate --at` writes it)")
    stems = tuple(_stem(path.stem, path) for path in sorted((folder / "stems").glob("*.wav")))
    mix = _stem("mix", folder / "mix.wav") if (folder / "mix.wav").is_file() else None
    return Clip(folder, spec, parts, stems, mix)
