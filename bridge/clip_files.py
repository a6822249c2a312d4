"""A clip folder: clip.mid, stems/<part>.wav, mix.wav and spec.json, each written atomically."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bridge.atomic import sweep_leftovers, write_bytes
from bridge.bwf import write_bwf
from bridge.paths import confine, safe_name

WAV_SUBTYPE = "PCM_24"


class ClipExists(FileExistsError):
    """The folder already holds a clip and overwriting was not asked for."""


def stem_file(out_dir: Path, part_name: str) -> Path:
    """Where a part's stem goes: stems/<safe name>.wav, always inside ``out_dir``."""
    return confine(out_dir, Path("stems") / f"{safe_name(part_name)}.wav")


def check_free(out_dir: Path, overwrite: bool) -> None:
    """Raise ClipExists if ``out_dir`` already has a clip and ``overwrite`` is off."""
    if not overwrite and (out_dir / "clip.mid").exists():
        raise ClipExists(f"{out_dir} already holds a clip (clip.mid); choose another --out or pass --force")


def write_clip(out_dir: Path, spec: dict, midi: bytes, sample_rate: int,
               stems: dict[str, np.ndarray], mix: np.ndarray, overwrite: bool = False,
               time_reference: int = 0) -> list[Path]:
    """Write the clip folder; returns the paths written. ``time_reference`` is the stems' and mix's
    bext position in samples (the clip's bar on the project timeline).

    A folder without clip.mid holds at most an unfinished clip (clip.mid is written last),
    so its clip files are replaced; a finished clip is replaced only with ``overwrite``.
    """
    out_dir = Path(out_dir)
    check_free(out_dir, overwrite)
    overwrite = True  # past check_free: either asked for, or what is there is an unfinished clip
    for folder in (out_dir, out_dir / "stems"):  # an earlier run killed mid-write
        sweep_leftovers(folder)
    written = []
    for name, audio in stems.items():
        path = stem_file(out_dir, name)
        if path in written:
            raise ValueError(f"two parts would share the stem file {path.name}; part names must differ")
        write_bwf(path, audio, sample_rate, time_reference, WAV_SUBTYPE, overwrite=overwrite)
        written.append(path)
    mix_path, spec_path, midi_path = (confine(out_dir, name) for name in ("mix.wav", "spec.json", "clip.mid"))
    write_bwf(mix_path, mix, sample_rate, time_reference, WAV_SUBTYPE, overwrite=overwrite)
    write_bytes(spec_path, (json.dumps(spec, indent=2) + "\n").encode(), overwrite)
    write_bytes(midi_path, midi, overwrite)  # last: its presence marks a complete folder
    return [*written, mix_path, spec_path, midi_path]
