"""The one path from a take (spec + MIDI from the engine) to a clip folder a producer can hear.

`generate`, `export`, the co-creation verbs (vary, infill, continue, accompany, rearrange) and
`batch` all come through `write_take_folder`: the clip is placed at its bar (bridge/timeline/place.py),
the engine renders the stems and the mix and encodes them as files (Broadcast WAV carrying the bar's
time reference, or FLAC), and bridge/clip_files.py writes stems/<part>.wav and mix.wav as each arrives
(while clip.png is drawn), then spec.json, clip.png and clip.mid. A CLI call so needs no
audio library. With ``midi_only`` nothing is rendered: the folder holds clip.mid and spec.json.
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
    audio: object | None = None  # bridge.client.RenderedFiles (the header's figures), for a summary line
    render_seconds: float = 0.0  # waiting for the engine's stems
    write_seconds: float = 0.0   # writing what was left after the last file arrived

    def as_json(self) -> dict:
        """The paths as strings: midi, mix, stems {part: path}, spec, picture, files."""
        return {"folder": str(self.folder), "midi": str(self.midi), "mix": self.mix and str(self.mix),
                "stems": {name: str(path) for name, path in self.stems.items()}, "spec": str(self.spec_file),
                "picture": self.picture and str(self.picture), "files": [str(p) for p in self.files]}


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
    from engine.config import DEFAULT_SAMPLE_RATE

    out = Path(out)
    check_free(out, overwrite)
    spec = spec_json(take.spec)
    if midi_only:
        midi, _ = clip_at_bar(spec, take.midi, DEFAULT_SAMPLE_RATE)
        paths = write_clip(out, spec, midi, 0, {}, None, overwrite)
        return ClipFolder(out.resolve(), spec, paths[-1], paths[0], files=paths)

    began = time.monotonic()
    writer = ClipWriter(out, overwrite, fmt)
    midi, time_reference = clip_at_bar(spec, take.midi, sample_rate or DEFAULT_SAMPLE_RATE)
    try:  # the engine encodes the files; each is written as soon as its last byte is in
        rendered = client.render_files(take.midi, fmt, time_reference, sample_rate, on_progress, on_file=writer.file,
                                       **{"tail": "cut", **(options or {})}, **render_options(take.spec),
                                       picture_title=picture_title(take.spec) if picture else "")
        arrived = time.monotonic()
        writer.files(rendered.parts)
    except BaseException:  # the render failed (or was interrupted) after some files were written
        writer.abandon()
        raise
    spec["sound"] = {"sources": dict(rendered.sources), "treatments": list(rendered.treatments)}  # what played
    paths = writer.finish(spec, midi, rendered.picture)
    by_name = {path.name: path for path in paths}
    return ClipFolder(out.resolve(), spec, by_name["clip.mid"], by_name["spec.json"], mix=by_name[f"mix.{fmt}"],
                      stems={name: stem_file(out, name, fmt) for name in rendered.parts},
                      picture=by_name.get("clip.png"), files=paths, audio=rendered,
                      render_seconds=arrived - began, write_seconds=time.monotonic() - arrived)
