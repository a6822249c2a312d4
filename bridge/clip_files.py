"""A clip folder: clip.mid, stems/<part>.wav, mix.wav and spec.json, each written atomically."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bridge.atomic import write_bytes
from bridge.bwf import write_bwf

WAV_SUBTYPE = "PCM_24"


class ClipExists(FileExistsError):
    """The folder already holds a clip and overwriting was not asked for."""


def clip_paths(out_dir: Path, part_names: list[str]) -> list[Path]:
    """Every file a clip folder will hold."""
    return [out_dir / "clip.mid", out_dir / "spec.json", out_dir / "mix.wav",
            *(out_dir / "stems" / f"{name}.wav" for name in part_names)]


def check_free(out_dir: Path, overwrite: bool) -> None:
    """Raise ClipExists if ``out_dir`` already has a clip and ``overwrite`` is off."""
    if not overwrite and (out_dir / "clip.mid").exists():
        raise ClipExists(f"{out_dir} already holds a clip (clip.mid); choose another --out or pass --force")


def write_clip(out_dir: Path, spec: dict, midi: bytes, sample_rate: int,
               stems: dict[str, np.ndarray], mix: np.ndarray, overwrite: bool = False,
               time_reference: int = 0) -> list[Path]:
    """Write the clip folder; returns the paths written. ``time_reference`` is the stems' and mix's
    bext position in samples (the clip's bar on the project timeline)."""
    out_dir = Path(out_dir)
    check_free(out_dir, overwrite)
    for name, audio in stems.items():
        write_bwf(out_dir / "stems" / f"{name}.wav", audio, sample_rate, time_reference, WAV_SUBTYPE,
                  overwrite=overwrite)
    write_bwf(out_dir / "mix.wav", mix, sample_rate, time_reference, WAV_SUBTYPE, overwrite=overwrite)
    write_bytes(out_dir / "spec.json", (json.dumps(spec, indent=2) + "\n").encode(), overwrite)
    # clip.mid last: its presence marks a complete folder.
    write_bytes(out_dir / "clip.mid", midi, overwrite)
    return clip_paths(out_dir, list(stems))
