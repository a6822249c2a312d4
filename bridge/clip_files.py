"""A clip folder: clip.mid, stems/<part>.wav, mix.wav, spec.json and clip.png, each written atomically.

Stems are 24-bit Broadcast WAVs whose bext time reference puts them at the clip's position in the
project (FLAC on request: the same audio, but FLAC has no bext chunk, so no time reference).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bridge.atomic import atomic_path, write_bytes
from bridge.bwf import write_bwf

WAV_SUBTYPE = "PCM_24"
AUDIO_FORMATS = ("wav", "flac")


class ClipExists(FileExistsError):
    """The folder already holds a clip and overwriting was not asked for."""


def clip_paths(out_dir: Path, part_names: list[str], fmt: str = "wav", picture: bool = False) -> list[Path]:
    """Every file a clip folder will hold."""
    return [out_dir / "clip.mid", out_dir / "spec.json", out_dir / f"mix.{fmt}",
            *(out_dir / "stems" / f"{name}.{fmt}" for name in part_names),
            *([out_dir / "clip.png"] if picture else [])]


def clip_time_reference(start_bar: int, tempo_bpm: float, meter: tuple[int, int], sample_rate: int) -> int:
    """Samples from the project's start to bar ``start_bar`` (1-based) at a constant tempo and meter.

    That is where a DAW honouring the bext time reference puts the stem; bar 1 is sample 0.
    """
    numerator, denominator = meter
    quarters = (start_bar - 1) * numerator * 4 / denominator
    return round(quarters * 60.0 / tempo_bpm * sample_rate)


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


def check_free(out_dir: Path, overwrite: bool) -> None:
    """Raise ClipExists if ``out_dir`` already has a clip and ``overwrite`` is off."""
    if not overwrite and (out_dir / "clip.mid").exists():
        raise ClipExists(f"{out_dir} already holds a clip (clip.mid); choose another --out or pass --force")


def write_clip(out_dir: Path, spec: dict, midi: bytes, sample_rate: int,
               stems: dict[str, np.ndarray], mix: np.ndarray, overwrite: bool = False, fmt: str = "wav",
               time_reference: int = 0, picture: bytes | None = None) -> list[Path]:
    """Write the clip folder; returns the paths written. ``picture`` is clip.png's bytes, if any."""
    out_dir = Path(out_dir)
    check_free(out_dir, overwrite)
    if fmt not in AUDIO_FORMATS:
        raise ValueError(f"audio format must be one of {', '.join(AUDIO_FORMATS)}, got {fmt!r}")
    for name, audio in stems.items():
        write_audio(out_dir / "stems" / f"{name}.{fmt}", audio, sample_rate, fmt, time_reference, overwrite)
    write_audio(out_dir / f"mix.{fmt}", mix, sample_rate, fmt, time_reference, overwrite)
    write_bytes(out_dir / "spec.json", (json.dumps(spec, indent=2) + "\n").encode(), overwrite)
    if picture is not None:
        write_bytes(out_dir / "clip.png", picture, overwrite)
    # clip.mid last: its presence marks a complete folder.
    write_bytes(out_dir / "clip.mid", midi, overwrite)
    return clip_paths(out_dir, list(stems), fmt, picture is not None)
