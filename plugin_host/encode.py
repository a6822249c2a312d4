"""Stems as file bytes: 24-bit Broadcast WAV placed on a timeline by its bext chunk, or 24-bit FLAC.

The WAV is written here (numpy packs the samples); its bext chunk (EBU Tech 3285) comes before the data
chunk, so DAWs that honour its TimeReference insert the file at its sample position. soundfile
(libsndfile) encodes FLAC, which has no bext chunk.
The engine encodes a render's files for clients that write them as they come (a CLI call then needs
neither numpy nor soundfile); bridge/bwf.py writes them to disk.
"""
from __future__ import annotations

import io
import os
import secrets
import struct
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile

from plugin_host.config import FILE_ENCODE_THREADS, STEM_FILE_FORMATS, STEM_SUBTYPE
from plugin_host.stems import Stems

if TYPE_CHECKING:  # for annotations: bridge/bwf.py imports this module without the renderer
    from symusic import Score

    from plugin_host.inprocess import FileRequest

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


def pcm24(audio: np.ndarray) -> bytearray:
    """(frames, channels) float samples as interleaved little-endian 24-bit integers, as libsndfile writes
    them: scaled by 2**23, rounded to the nearest, clipped to the 24-bit range. numpy does it in a few passes
    without the GIL (libsndfile on a BytesIO calls back into Python for every block it writes)."""
    scaled = np.asarray(audio, dtype=np.float32) * np.float32(2 ** 23)  # float32 holds 24-bit integers
    np.rint(scaled, out=scaled)
    np.clip(scaled, -2 ** 23, 2 ** 23 - 1, out=scaled)
    little = scaled.astype("<i4").reshape(-1).view(np.uint8).reshape(-1, 4)
    packed = bytearray(3 * len(little))
    rows = np.frombuffer(packed, dtype=np.uint8).reshape(-1, 3)
    for byte in range(3):  # a column at a time: numpy copies a (n, 3) of a (n, 4) view twice as slowly
        rows[:, byte] = little[:, byte]
    return packed  # bwf_bytes joins it into the file: no bytes() copy of it first


def bwf_bytes(audio: np.ndarray, sample_rate: int, time_reference: int = 0,
              description: str = "Cadenza stem") -> bytes:
    """``audio`` ((frames, channels) float) as a 24-bit Broadcast WAV placed at ``time_reference`` samples:
    RIFF, then bext, fmt (PCM) and data chunks."""
    if time_reference < 0:
        raise ValueError(f"time_reference must be >= 0 samples, got {time_reference}")
    audio = np.asarray(audio)
    channels = audio.shape[1] if audio.ndim == 2 else 1
    data = pcm24(audio.reshape(-1, channels))
    block = 3 * channels
    fmt = struct.pack("<HHIIHH", 1, channels, sample_rate, sample_rate * block, block, 24)
    pad = b"\0" * (len(data) & 1)  # chunks start on even offsets
    chunks = (_bext_chunk(time_reference, description, "Cadenza"), b"fmt " + struct.pack("<I", len(fmt)) + fmt,
              b"data" + struct.pack("<I", len(data)))
    riff_size = 4 + sum(map(len, chunks)) + len(data) + len(pad)
    return b"".join((b"RIFF", struct.pack("<I", riff_size), b"WAVE", *chunks, data, pad))


def file_bytes(audio: np.ndarray, sample_rate: int, fmt: str, time_reference: int = 0) -> bytes:
    """One stem (or the mix) as a ``fmt`` file: 24-bit Broadcast WAV with its time reference, or FLAC."""
    if check_format(fmt) == "wav":
        return bwf_bytes(audio, sample_rate, time_reference)
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, sample_rate, subtype=STEM_SUBTYPE, format="FLAC")
    return buffer.getvalue()


def stem_files(stems: Stems, fmt: str, time_reference: int = 0) -> Iterator[tuple[str, bytes]]:
    """(name, file bytes) of each stem, then of the mix ("mix"), in order: FILE_ENCODE_THREADS files are
    encoded at once, ahead of the one the caller is sending (numpy packs WAV samples without the GIL)."""
    buffers = [*stems.parts.items(), ("mix", stems.mix)]
    with ThreadPoolExecutor(max_workers=FILE_ENCODE_THREADS, thread_name_prefix="encode") as pool:
        def encode(index: int) -> Future:
            return pool.submit(file_bytes, buffers[index][1], stems.sample_rate, fmt, time_reference)

        pending = [encode(index) for index in range(min(FILE_ENCODE_THREADS, len(buffers)))]
        for index, (name, _) in enumerate(buffers):
            data = pending.pop(0).result()
            if index + FILE_ENCODE_THREADS < len(buffers):
                pending.append(encode(index + FILE_ENCODE_THREADS))
            yield name, data


def leave_file(folder: str | Path, data: bytes | bytearray, fmt: str) -> Path:
    """``data`` written whole to a new file of a random name in ``folder`` (mode 0600, never through a link);
    its path."""
    path = Path(folder) / f"{secrets.token_hex(8)}.{check_format(fmt)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def deliver(stems: Stems, request: FileRequest, score: Score, bars: int | None,
            on_file: Callable[[str, bytes | Path], None]) -> bytes | None:
    """A file request carried out: each file to ``on_file`` as soon as it is encoded (the stems, then the mix),
    clip.png drawn meanwhile; returns clip.png's bytes, or None when the request asks for none. With the
    request's ``folder``, ``on_file`` gets the path of the file left there (its bytes when it cannot be
    written there: a full or read-only folder). The render worker and an in-process render deliver alike."""
    from plugin_host.picture import stems_png

    def left(data: bytes) -> bytes | Path:
        try:
            return leave_file(request.folder, data, request.file_format)
        except OSError:
            return data

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="picture") as drawing:
        picture = drawing.submit(stems_png, score, stems, request.picture_title, bars) \
            if request.picture_title else None
        # stem_files encodes the next files while this one is written and passed on
        for name, data in stem_files(stems, request.file_format, request.time_reference):
            on_file(name, left(data) if request.folder else data)
        return picture.result() if picture is not None else None
