"""A clip folder: clip.mid, stems/<part>.wav, mix.wav, spec.json and clip.png, each written atomically.

Stems are 24-bit Broadcast WAVs whose bext time reference puts them at the clip's position in the
project (FLAC on request: the same audio, but FLAC has no bext chunk, so no time reference).
Every path stays inside the folder: part names become safe file names.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bridge.atomic import atomic_path, sweep_leftovers, write_bytes
from bridge.bwf import write_bwf
from bridge.paths import confine, safe_name
from engine.errors import Exists

WAV_SUBTYPE = "PCM_24"
AUDIO_FORMATS = ("wav", "flac")


class ClipExists(Exists):
    """The folder already holds a clip and overwriting was not asked for."""


def check_free(out_dir: Path, overwrite: bool) -> None:
    """Raise ClipExists if ``out_dir`` already has a clip and ``overwrite`` is off."""
    if not overwrite and (out_dir / "clip.mid").exists():
        raise ClipExists(f"{out_dir} already holds a clip (clip.mid); choose another --out or pass --force")


def stem_file(out_dir: Path, part_name: str, fmt: str = "wav") -> Path:
    """Where a part's stem goes: stems/<safe name>.<fmt>, always inside ``out_dir``."""
    return confine(out_dir, Path("stems") / f"{safe_name(part_name)}.{fmt}")


def write_audio(path: Path, audio: np.ndarray, sample_rate: int, fmt: str, time_reference: int,
                overwrite: bool) -> None:
    """One 24-bit stem: Broadcast WAV with its time reference, or FLAC."""
    if fmt == "wav":
        write_bwf(path, audio, sample_rate, time_reference, WAV_SUBTYPE, overwrite=overwrite)
    elif fmt == "flac":
        import soundfile

        with atomic_path(path, overwrite) as tmp:
            soundfile.write(tmp, audio, sample_rate, subtype="PCM_24", format="FLAC")
    else:
        raise ValueError(f"audio format must be one of {', '.join(AUDIO_FORMATS)}, got {fmt!r}")


def write_clip(out_dir: Path, spec: dict, midi: bytes, sample_rate: int,
               stems: dict[str, np.ndarray], mix: np.ndarray | None, overwrite: bool = False, fmt: str = "wav",
               time_reference: int = 0, picture: bytes | None = None) -> list[Path]:
    """Write the clip folder; returns the paths written.

    ``time_reference`` is the stems' and mix's bext position in samples (the clip's bar on the
    project timeline); ``picture`` is clip.png's bytes, if any; ``mix`` None (and no stems) writes
    a MIDI-only folder: spec.json and clip.mid. A folder without clip.mid holds
    at most an unfinished clip (clip.mid is written last), so its clip files are replaced; a
    finished clip is replaced only with ``overwrite``.
    """
    out_dir = Path(out_dir)
    check_free(out_dir, overwrite)
    if fmt not in AUDIO_FORMATS:
        raise ValueError(f"audio format must be one of {', '.join(AUDIO_FORMATS)}, got {fmt!r}")
    overwrite = True  # past check_free: either asked for, or what is there is an unfinished clip
    for folder in (out_dir, out_dir / "stems"):  # an earlier run killed mid-write
        sweep_leftovers(folder)
    written: list[Path] = []
    for name, audio in stems.items():
        path = stem_file(out_dir, name, fmt)
        if path in written:
            raise ValueError(f"two parts would share the stem file {path.name}; part names must differ")
        write_audio(path, audio, sample_rate, fmt, time_reference, overwrite)
        written.append(path)
    mix_path, spec_path, png_path, midi_path = (
        confine(out_dir, name) for name in (f"mix.{fmt}", "spec.json", "clip.png", "clip.mid"))
    if mix is not None:
        write_audio(mix_path, mix, sample_rate, fmt, time_reference, overwrite)
        written.append(mix_path)
    write_bytes(spec_path, (json.dumps(spec, indent=2) + "\n").encode(), overwrite)
    written.append(spec_path)
    if picture is not None:
        write_bytes(png_path, picture, overwrite)
        written.append(png_path)
    write_bytes(midi_path, midi, overwrite)  # last: its presence marks a complete folder
    return [*written, midi_path]
