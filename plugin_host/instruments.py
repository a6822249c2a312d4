"""Instruments behind one interface: notes in, a (frames, 2) float32 buffer out.

Two kinds: ``SoundFontInstrument`` (plugin_host/soundfont.py, tinysoundfont) and
``PluginInstrument`` here, a VST3/AU instrument loaded with ``pedalboard.load_plugin`` that
the notes reach as MIDI. Effect plugins load through the same ``load_plugin`` and join a role's
chain. A plugin's parameter values can be saved and applied as a JSON preset (data, not code).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Protocol

import numpy as np

from engine.errors import Broken
from plugin_host.config import PLUGIN_LOAD_TIMEOUT_SECONDS

CHANNELS = 2
PLUGIN_SUFFIXES = (".vst3", ".component")


@dataclass(frozen=True)
class TimedNote:
    """One note in seconds from the clip's first downbeat."""

    start: float
    end: float
    pitch: int
    velocity: int


class Instrument(Protocol):
    """What the renderer asks of any instrument."""

    name: str

    def render(self, notes: list[TimedNote], frames: int, program: int = 0, is_drum: bool = False) -> np.ndarray:
        """``frames`` x 2 float32 audio of ``notes``; sample 0 is time 0."""
        ...


class PluginError(Broken):
    """A third-party plugin failed to load or to render; the message names it."""

    def __init__(self, plugin: str, message: str) -> None:
        super().__init__(f"plugin {plugin}: {message}")
        self.plugin = plugin


def load_plugin(path: Path | str, preset: Path | None = None):
    """Load a VST3/AU plugin with pedalboard; PluginError naming the file and what is accepted."""
    import pedalboard

    path = Path(path)
    if not path.exists():
        raise PluginError(str(path), "no such file or bundle (give a .vst3 bundle or .component)")
    if path.suffix.lower() not in PLUGIN_SUFFIXES:
        raise PluginError(str(path), f"is not a VST3 or AU plugin (accepted: {', '.join(PLUGIN_SUFFIXES)}); "
                                     "pedalboard on Linux loads VST3 only")
    try:
        plugin = pedalboard.load_plugin(str(path), initialization_timeout=PLUGIN_LOAD_TIMEOUT_SECONDS)
    except Exception as error:  # pedalboard raises ImportError/RuntimeError with every attempt listed
        raise PluginError(str(path), f"could not be loaded: {error}") from None
    if preset is not None:
        apply_preset(plugin, load_preset(preset))
    return plugin


def plugin_preset(plugin) -> dict:
    """A plugin's parameter values as data: {"name": ..., "parameters": {param: raw 0..1 value}}."""
    return {"name": getattr(plugin, "name", type(plugin).__name__),
            "parameters": {key: float(param.raw_value) for key, param in plugin.parameters.items()}}


def save_preset(plugin, path: Path) -> None:
    """Write ``plugin_preset(plugin)`` as JSON."""
    Path(path).write_text(json.dumps(plugin_preset(plugin), indent=2, sort_keys=True) + "\n")


def preset_folder(plugin_path: Path | str) -> Path:
    """Where the presets shipped as data for a plugin live: plugin_host/data/presets/<bundle name>/."""
    return Path(str(resources.files("plugin_host.data").joinpath("presets"))) / Path(plugin_path).stem


def preset_names(plugin_path: Path | str) -> list[str]:
    """The names of the presets shipped for a plugin (e.g. "bright" for CadenzaSynth)."""
    folder = preset_folder(plugin_path)
    return sorted(path.stem for path in folder.glob("*.json")) if folder.is_dir() else []


def resolve_preset(plugin_path: Path | str, preset: Path | str) -> Path:
    """A preset file, or the name of a preset shipped as data for that plugin -> its JSON file.

    A name may come as a path the CLI made absolute (``--preset keys=bright``): its last part
    is the name. ValueError saying which names the plugin has when neither fits."""
    if Path(preset).is_file():
        return Path(preset)
    candidate = preset_folder(plugin_path) / f"{Path(preset).stem}.json"
    if Path(preset).suffix in ("", ".json") and candidate.is_file():
        return candidate
    names = preset_names(plugin_path)
    shipped = f"a name shipped for {Path(plugin_path).stem}: {', '.join(names)}" if names else \
        f"no presets are shipped for {Path(plugin_path).stem}"
    raise ValueError(f"{preset}: no such preset file (give a JSON preset file, or {shipped})")


def load_preset(path: Path) -> dict:
    """Read a preset written by ``save_preset``; ValueError naming the file if it is not one."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"preset {path}: not a readable JSON preset ({error})") from None
    if not isinstance(data.get("parameters"), dict):
        raise ValueError(f"preset {path}: has no 'parameters' object")
    return data


def apply_preset(plugin, preset: dict) -> None:
    """Set every parameter the preset names; ValueError naming unknown parameters."""
    unknown = sorted(set(preset["parameters"]) - set(plugin.parameters))
    if unknown:
        raise ValueError(f"preset for {preset.get('name')}: unknown parameters {', '.join(unknown)}")
    for key, value in preset["parameters"].items():
        plugin.parameters[key].raw_value = float(value)


class PluginInstrument:
    """A VST3/AU instrument: the notes go in as MIDI, its stereo output comes back."""

    def __init__(self, plugin, sample_rate: int, name: str = "") -> None:
        if not getattr(plugin, "is_instrument", False):
            raise PluginError(name or plugin.name, "is an effect, not an instrument (it takes no MIDI)")
        self.plugin = plugin
        self.sample_rate = sample_rate
        self.name = name or plugin.name

    def render(self, notes: list[TimedNote], frames: int, program: int = 0, is_drum: bool = False) -> np.ndarray:
        import mido

        messages = []
        for note in notes:
            messages.append(mido.Message("note_on", note=note.pitch, velocity=note.velocity, time=note.start))
            messages.append(mido.Message("note_off", note=note.pitch, velocity=0, time=note.end))
        messages.sort(key=lambda m: (m.time, m.type == "note_on"))
        try:
            audio = self.plugin(messages, duration=frames / self.sample_rate, sample_rate=self.sample_rate,
                                num_channels=CHANNELS, reset=True)
        except Exception as error:
            raise PluginError(self.name, f"failed while rendering: {error}") from None
        audio = np.asarray(audio, dtype=np.float32).T  # (channels, frames) -> (frames, channels)
        if audio.shape[1] == 1:
            audio = np.repeat(audio, CHANNELS, axis=1)
        out = np.zeros((frames, CHANNELS), dtype=np.float32)
        out[:min(frames, len(audio))] = audio[:frames, :CHANNELS]
        return out
