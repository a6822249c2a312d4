"""Broadcast WAV: a WAV file with a `bext` chunk whose TimeReference places it on a timeline.

soundfile writes the audio; this module adds the bext chunk (EBU Tech 3285) before the
data chunk, so DAWs that honour the time reference insert the file at its sample position.
"""
from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import soundfile

from bridge.atomic import atomic_path

BEXT_SIZE = 602  # fixed part of the bext chunk, version 1, no coding history


def _bext_chunk(time_reference: int, description: str, originator: str) -> bytes:
    body = struct.pack(
        "<256s32s32s10s8sQH64s190s",
        description.encode("ascii", "replace")[:256],
        originator.encode("ascii", "replace")[:32],
        b"", b"", b"",
        time_reference,
        1,       # version
        b"",     # UMID
        b"",     # loudness fields and reserved
    )
    assert len(body) == BEXT_SIZE
    return b"bext" + struct.pack("<I", len(body)) + body


def write_bwf(path: Path, audio: np.ndarray, sample_rate: int, time_reference: int = 0,
              subtype: str = "PCM_24", description: str = "Cadenza stem", overwrite: bool = False) -> None:
    """Write ``audio`` ((frames, channels) float) as a Broadcast WAV placed at ``time_reference`` samples."""
    if time_reference < 0:
        raise ValueError(f"time_reference must be >= 0 samples, got {time_reference}")
    buffer = io.BytesIO()  # encoded in memory, written by Python: a full disk is an OSError saying so
    soundfile.write(buffer, audio, sample_rate, subtype=subtype, format="WAV")
    data = buffer.getvalue()
    with atomic_path(path, overwrite) as tmp:
        # RIFF header (12 bytes), then chunks; insert bext right after the header.
        chunk = _bext_chunk(time_reference, description, "Cadenza")
        riff_size = struct.unpack("<I", data[4:8])[0] + len(chunk)
        tmp.write_bytes(data[:4] + struct.pack("<I", riff_size) + data[8:12] + chunk + data[12:])


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
