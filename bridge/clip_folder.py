"""The one path from a take (spec + MIDI from the engine) to a clip folder a producer can hear.

`generate`, `export`, the co-creation verbs (vary, infill, continue, accompany, rearrange) and
`batch` all come through `write_take_folder`: the engine renders the stems and the mix, the clip is
placed at its bar (bridge/timeline/place.py), and bridge/clip_files.py writes stems/<part>.wav and
mix.wav as soon as their samples are in (while the engine draws clip.png), then spec.json, clip.png
and clip.mid. With ``midi_only`` nothing is rendered: the
folder holds clip.mid and spec.json.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bridge.clip_content import picture_title, render_options, spec_json


@dataclass
class ClipFolder:
    """What was written, by kind; ``files`` lists every path in the order written."""

    folder: Path
    spec: dict
    midi: Path
    spec_file: Path
    mix: Path | None = None
    stems: dict[str, Path] = field(default_factory=dict)
    picture: Path | None = None
    files: list[Path] = field(default_factory=list)
    audio: object | None = None  # bridge.client.RenderedAudio, for a summary line
    render_seconds: float = 0.0  # waiting for the engine's stems
    write_seconds: float = 0.0   # placing and writing the files (clip.png is drawn by the engine meanwhile)

    def as_json(self) -> dict:
        """The paths as strings: midi, mix, stems {part: path}, spec, picture, files."""
        return {"folder": str(self.folder), "midi": str(self.midi), "mix": self.mix and str(self.mix),
                "stems": {name: str(path) for name, path in self.stems.items()}, "spec": str(self.spec_file),
                "picture": self.picture and str(self.picture), "files": [str(p) for p in self.files]}


def import_audio_writing_meanwhile() -> None:
    """Import what writing the stems needs (numpy, soundfile: a tenth of a second or more) in a thread of its
    own, so a CLI call does it while the engine composes and renders rather than after."""
    import importlib
    import threading

    threading.Thread(target=importlib.import_module, args=("bridge.bwf",), name="audio-imports",
                     daemon=True).start()


def clip_at_bar(spec: dict, midi: bytes, sample_rate: int) -> tuple[bytes, int]:
    """bridge/timeline/place.py's clip_at_bar, imported only for a clip made for a later bar (its imports,
    lxml among them, cost a tenth of a second or more per CLI call)."""
    if int(spec.get("start_bar") or 1) == 1:
        return midi, 0
    from bridge.timeline.place import clip_at_bar as placed

    return placed(spec, midi, sample_rate)


def write_take_folder(client, out: Path, take, *, sample_rate: int = 0, options: dict | None = None,
                      fmt: str = "wav", overwrite: bool = False, midi_only: bool = False, picture: bool = True,
                      on_progress: Callable | None = None) -> ClipFolder:
    """Render ``take`` (anything with ``.spec``, a MusicSpec, and ``.midi``, SMF bytes) with the
    engine behind ``client`` and write its clip folder ``out``.

    ``options`` are the caller's RenderRequest fields (tail, soundfont, plugins, presets, sounds,
    loudness_lufs); the spec adds style, roles, bars and the prompt. spec.json's "sound" records the
    source that played each part and the genre processing applied.
    """
    from bridge.clip_files import ClipWriter, check_free, stem_file, write_clip

    out = Path(out)
    check_free(out, overwrite)
    spec = spec_json(take.spec)
    if midi_only:
        midi, _ = clip_at_bar(spec, take.midi, 48000)
        paths = write_clip(out, spec, midi, 0, {}, None, overwrite)
        return ClipFolder(out.resolve(), spec, paths[-1], paths[0], files=paths)
    began = time.monotonic()
    writer = ClipWriter(out, overwrite, fmt)
    placed: dict = {}

    def placement(rate: int) -> int:
        """The stems' bext time reference (and the clip's MIDI at its bar), worked out once."""
        if "time_reference" not in placed:
            placed["midi"], placed["time_reference"] = clip_at_bar(spec, take.midi, rate)
        return placed["time_reference"]

    def write_stem(name: str, samples, rate: int) -> None:  # written while the other parts still arrive
        writer.stem(name, samples, rate, placement(rate))

    def write_audio(audio) -> None:  # every sample is in; the engine may still be drawing clip.png
        placed["rendered"] = time.monotonic()
        writer.audio(audio.sample_rate, audio.parts, audio.mix, placement(audio.sample_rate))

    try:
        audio = client.render(take.midi, sample_rate, on_progress, on_audio=write_audio, on_stem=write_stem,
                              **{"tail": "cut", **(options or {})}, **render_options(take.spec),
                              picture_title=picture_title(take.spec) if picture else "")
    except BaseException:  # the render failed (or was interrupted) after its audio was written
        writer.abandon()
        raise
    spec["sound"] = {"sources": dict(audio.sources), "treatments": list(audio.treatments)}  # what played each part
    paths = writer.finish(spec, placed["midi"], audio.picture)
    by_name = {path.name: path for path in paths}
    return ClipFolder(out.resolve(), spec, by_name["clip.mid"], by_name["spec.json"], mix=by_name[f"mix.{fmt}"],
                      stems={name: stem_file(out, name, fmt) for name in audio.parts},
                      picture=by_name.get("clip.png"), files=paths, audio=audio,
                      render_seconds=placed["rendered"] - began, write_seconds=time.monotonic() - placed["rendered"])
