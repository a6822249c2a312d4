"""Broadcast WAV files on disk: written atomically, their bext TimeReference read back.

The bytes come from plugin_host/encode.py (the engine encodes a render's files with the same code).
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from bridge.atomic import write_bytes
from plugin_host.encode import BEXT_SIZE, bwf_bytes

__all__ = ["BEXT_SIZE", "read_time_reference", "write_bwf"]


def write_bwf(path: Path, audio: np.ndarray, sample_rate: int, time_reference: int = 0,
              description: str = "Cadenza stem", overwrite: bool = False) -> None:
    """Write ``audio`` ((frames, channels) float) as a 24-bit Broadcast WAV placed at ``time_reference`` samples."""
    write_bytes(path, bwf_bytes(audio, sample_rate, time_reference, description), overwrite)


def read_time_reference(path: Path) -> int | None:
    """The bext TimeReference of a WAV file, or None if it has no bext chunk."""
    data = Path(path).read_bytes()
    at = 12
    while at + 8 <= len(data):
        chunk_id, size = data[at:at + 4], struct.unpack("<I", data[at + 4:at + 8])[0]
        if chunk_id == b"bext":
            return struct.unpack("<Q", data[at + 8 + 338:at + 8 + 346])[0]
        at += 8 + size + (size & 1)
    return None
