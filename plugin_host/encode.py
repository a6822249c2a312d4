"""Stems as file bytes: 24-bit Broadcast WAV placed on a timeline by its bext chunk, or 24-bit FLAC.

soundfile (libsndfile) encodes the audio; the bext chunk (EBU Tech 3285) goes before the data chunk,
so DAWs that honour its TimeReference insert the file at its sample position. FLAC has no bext chunk.
The engine encodes a render's files for clients that write them as they come (a CLI call then needs
neither numpy nor soundfile); bridge/bwf.py writes them to disk.
"""
from __future__ import annotations

import io
import struct

import numpy as np
import soundfile

from plugin_host.config import STEM_FILE_FORMATS, STEM_SUBTYPE

BEXT_SIZE = 602  # fixed part of the bext chunk, version 1, no coding history


def check_format(fmt: str) -> str:
    if fmt not in STEM_FILE_FORMATS:
        raise ValueError(f"audio format must be one of {', '.join(STEM_FILE_FORMATS)}, got {fmt!r}")
    return fmt


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


def bwf_bytes(audio: np.ndarray, sample_rate: int, time_reference: int = 0, subtype: str = STEM_SUBTYPE,
              description: str = "Cadenza stem") -> bytes:
    """``audio`` ((frames, channels) float) as a Broadcast WAV placed at ``time_reference`` samples."""
    if time_reference < 0:
        raise ValueError(f"time_reference must be >= 0 samples, got {time_reference}")
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, sample_rate, subtype=subtype, format="WAV")
    data = buffer.getbuffer()
    # RIFF header (12 bytes), then chunks; bext goes right after the header.
    chunk = _bext_chunk(time_reference, description, "Cadenza")
    riff_size = struct.unpack("<I", data[4:8])[0] + len(chunk)
    return b"".join((data[:4], struct.pack("<I", riff_size), data[8:12], chunk, data[12:]))


def file_bytes(audio: np.ndarray, sample_rate: int, fmt: str, time_reference: int = 0) -> bytes:
    """One stem (or the mix) as a ``fmt`` file: 24-bit Broadcast WAV with its time reference, or FLAC."""
    if check_format(fmt) == "wav":
        return bwf_bytes(audio, sample_rate, time_reference)
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, sample_rate, subtype=STEM_SUBTYPE, format="FLAC")
    return buffer.getvalue()
