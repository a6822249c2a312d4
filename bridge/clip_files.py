"""A clip folder: clip.mid, stems/<part>.wav, mix.wav, spec.json and clip.png, each written atomically.

Stems are 24-bit Broadcast WAVs whose bext time reference puts them at the clip's position in the
project (FLAC on request: the same audio, but FLAC has no bext chunk, so no time reference).
Every path stays inside the folder: part names become safe file names.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.atomic import sweep_leftovers, write_bytes
from bridge.paths import confine, safe_name
from engine.errors import Exists

if TYPE_CHECKING:
    import numpy as np

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
        from bridge.bwf import write_bwf  # numpy and soundfile: imported when audio is written, not before

        write_bwf(path, audio, sample_rate, time_reference, WAV_SUBTYPE, overwrite=overwrite)
    elif fmt == "flac":
        import soundfile

        buffer = io.BytesIO()  # encoded in memory, written by Python: a full disk is an OSError saying so
        soundfile.write(buffer, audio, sample_rate, subtype="PCM_24", format="FLAC")
        write_bytes(path, buffer.getvalue(), overwrite)
    else:
        raise ValueError(f"audio format must be one of {', '.join(AUDIO_FORMATS)}, got {fmt!r}")


class ClipWriter:
    """One clip folder written in two steps: the audio (as soon as the stems are in), then spec.json,
    clip.png and clip.mid. clip.mid comes last: its presence marks a complete folder.

    A folder without clip.mid holds at most an unfinished clip, so its clip files are replaced; a finished
    clip is replaced only with ``overwrite``. On an OSError (a full disk, a folder made read-only) every
    file this writer wrote is removed again.
    """

    def __init__(self, out_dir: Path, overwrite: bool = False, fmt: str = "wav") -> None:
        self.out_dir = Path(out_dir)
        check_free(self.out_dir, overwrite)
        if fmt not in AUDIO_FORMATS:
            raise ValueError(f"audio format must be one of {', '.join(AUDIO_FORMATS)}, got {fmt!r}")
        self.fmt = fmt
        for folder in (self.out_dir, self.out_dir / "stems"):  # an earlier run killed mid-write
            sweep_leftovers(folder)
        self.midi_path = confine(self.out_dir, "clip.mid")
        self.midi_path.unlink(missing_ok=True)  # while its files are replaced the folder is an unfinished clip
        self.written: list[Path] = []
        self._early: dict[Path, object] = {}  # stem path -> the Future writing it (``stem``)
        self._pool = None

    def _start(self, path: Path, audio: np.ndarray, sample_rate: int, time_reference: int):
        """The Future writing ``path`` (started now, unless it was already): libsndfile's encoding and the
        fsyncs run without the GIL, so CLIP_WRITE_THREADS files are written side by side."""
        if path not in self._early:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                from engine.config import CLIP_WRITE_THREADS

                self._pool = ThreadPoolExecutor(max_workers=CLIP_WRITE_THREADS)
            self._early[path] = self._pool.submit(write_audio, path, audio, sample_rate, self.fmt, time_reference,
                                                  True)
        return self._early[path]

    def stem(self, name: str, audio: np.ndarray, sample_rate: int, time_reference: int = 0) -> None:
        """Start writing stems/<name>.<fmt> now, while the rest of the clip's audio is still arriving;
        ``audio`` then waits for it (and reports its error). A stem already started is not started again."""
        self._start(stem_file(self.out_dir, name, self.fmt), audio, sample_rate, time_reference)

    def audio(self, sample_rate: int, stems: dict[str, np.ndarray], mix: np.ndarray | None,
              time_reference: int = 0) -> list[Path]:
        """Write stems/<part>.<fmt> and mix.<fmt> (CLIP_WRITE_THREADS files at once, those ``stem`` started
        waited for); their paths.

        ``time_reference`` is their bext position in samples (the clip's bar on the project timeline).
        """
        files: list[tuple[Path, np.ndarray]] = []
        for name, audio in stems.items():
            path = stem_file(self.out_dir, name, self.fmt)
            if path in (p for p, _ in files):
                raise ValueError(f"two parts would share the stem file {path.name}; part names must differ")
            files.append((path, audio))
        if mix is not None:
            files.append((confine(self.out_dir, f"mix.{self.fmt}"), mix))
        if not files:
            return []
        done = [self._start(path, audio, sample_rate, time_reference) for path, audio in files]
        self._close_pool()  # every write finished
        paths = []
        for (path, _), future in zip(files, done, strict=True):
            if future.exception() is None:
                paths.append(path)
                if path not in self.written:
                    self.written.append(path)
        for future in done:
            if future.exception() is not None:
                if isinstance(future.exception(), OSError):
                    self.abandon()
                raise future.exception()
        return paths

    def finish(self, spec: dict, midi: bytes, picture: bytes | None = None) -> list[Path]:
        """Write spec.json, clip.png (if ``picture``) and clip.mid; every path written, in order."""
        spec_path, png_path = confine(self.out_dir, "spec.json"), confine(self.out_dir, "clip.png")
        try:
            write_bytes(spec_path, (json.dumps(spec, indent=2) + "\n").encode(), True)
            self.written.append(spec_path)
            if picture is not None:
                write_bytes(png_path, picture, True)
                self.written.append(png_path)
            write_bytes(self.midi_path, midi, True)  # last: its presence marks a complete folder
        except OSError:
            self.abandon()
            raise
        return [*self.written, self.midi_path]

    def abandon(self) -> None:
        """Remove every file written so far (stems started early included): no part of this clip is left behind."""
        for path, future in self._early.items():
            future.exception()  # finished writing, or failed
            if path not in self.written:
                self.written.append(path)
        self._early = {}
        for path in self.written:
            path.unlink(missing_ok=True)
        self.written = []
        self._close_pool()

    def _close_pool(self) -> None:
        """Wait for every write started and let the threads go."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def write_clip(out_dir: Path, spec: dict, midi: bytes, sample_rate: int,
               stems: dict[str, np.ndarray], mix: np.ndarray | None, overwrite: bool = False, fmt: str = "wav",
               time_reference: int = 0, picture: bytes | None = None) -> list[Path]:
    """Write the clip folder at once (ClipWriter's two steps); returns the paths written.

    ``time_reference`` is the stems' and mix's bext position in samples (the clip's bar on the
    project timeline); ``picture`` is clip.png's bytes, if any; ``mix`` None (and no stems) writes
    a MIDI-only folder: spec.json and clip.mid.
    """
    writer = ClipWriter(out_dir, overwrite, fmt)
    writer.audio(sample_rate, stems, mix, time_reference)
    return writer.finish(spec, midi, picture)
