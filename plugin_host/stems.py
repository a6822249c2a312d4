"""Stems: one float32 buffer per part, all the same length, sample 0 = the first downbeat; or the same
render as encoded files (StemFiles). Both carry what the render measured and chose (Rendered)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np


@dataclass(kw_only=True)
class Rendered:
    """What a render reports beside its audio.

    ``clip_frames`` is the clip's own length (bars x beats x 60 / tempo at the sample rate); the
    audio is longer only with the ``ring`` tail policy. ``loudness_lufs`` and ``true_peak_dbtp`` are
    the mix's, as measured after mastering (None if not measured). ``sources`` names what played each
    part (``synth:reese``, ``soundfont:/path/FluidR3_GM.sf2``, ``plugin:/path/X.vst3``); ``treatments``
    the genre processing applied (lofi, pumping, hall); ``reused`` the parts a render worker had
    rendered before (an earlier render, or ahead of this one).
    """

    sample_rate: int
    clip_frames: int | None = None
    loudness_lufs: float | None = None
    true_peak_dbtp: float | None = None
    sources: dict[str, str] = field(default_factory=dict)
    treatments: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)

    def report(self) -> dict:
        """The Rendered fields alone, as keyword arguments (for another kind of the same render)."""
        return {f.name: getattr(self, f.name) for f in fields(Rendered)}


def report_of(values: dict) -> dict:
    """The Rendered fields among ``values`` (a dict that may hold more), as keyword arguments."""
    return {f.name: values[f.name] for f in fields(Rendered) if f.name in values}


@dataclass(kw_only=True)
class Stems(Rendered):
    """Rendered audio: ``parts`` maps a part name to a (frames, channels) float32 array; ``mix`` is their sum,
    mastered."""

    parts: dict[str, np.ndarray]
    mix: np.ndarray

    @property
    def frames(self) -> int:
        return int(self.mix.shape[0])

    @property
    def channels(self) -> int:
        return int(self.mix.shape[1])


@dataclass(kw_only=True)
class StemFiles(Rendered):
    """A render's stems and mix as encoded files (plugin_host/encode.py): ``files`` maps each part's name,
    then "mix", to the file's bytes (or its path, left in the FileRequest's folder); ``picture`` is clip.png
    when one was asked for."""

    channels: int
    frames: int
    parts: list[str]
    files: dict[str, bytes | Path] = field(default_factory=dict)
    picture: bytes | None = None


# Called with (the stems being received, a part's name or "mix") as that buffer's samples are all in,
# before the later ones: a caller can send or encode it meanwhile (plugin_host/worker.py).
BufferFn = Callable[[Stems, str], None]
# Called with (the files being received, a part's name or "mix", that file's bytes or path) as each file is in.
FileFn = Callable[[StemFiles, str, bytes | Path], None]
