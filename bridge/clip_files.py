"""A clip folder: clip.mid, stems/<part>.wav, mix.wav, spec.json and clip.png, each written atomically.

Stems are 24-bit Broadcast WAVs whose bext time reference puts them at the clip's position in the
project (FLAC on request: the same audio, but FLAC has no bext chunk, so no time reference).
Every path stays inside the folder: part names become safe file names.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.atomic import move_in, sweep_leftovers, write_bytes
from bridge.paths import confine, safe_name
from engine.errors import Exists
from plugin_host.config import STEM_FILE_FORMATS

if TYPE_CHECKING:
    import numpy as np



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
    from plugin_host.encode import file_bytes  # numpy and soundfile: imported when audio is written, not before

    write_bytes(path, file_bytes(audio, sample_rate, fmt, time_reference), overwrite)


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
        if fmt not in STEM_FILE_FORMATS:
            raise ValueError(f"audio format must be one of {', '.join(STEM_FILE_FORMATS)}, got {fmt!r}")
        self.fmt = fmt
        for folder in (self.out_dir, self.out_dir / "stems"):  # an earlier run killed mid-write
            sweep_leftovers(folder)
        self.midi_path = confine(self.out_dir, "clip.mid")
        self.midi_path.unlink(missing_ok=True)  # while its files are replaced the folder is an unfinished clip
        self.written: list[Path] = []
        self._early: dict[Path, object] = {}  # path -> the Future writing it
        self._pool = None

    def _start(self, path: Path, write: Callable[[], None]):
        """The Future running ``write`` (started now, unless ``path`` was started already): libsndfile's
        encoding and the fsyncs run without the GIL, so CLIP_WRITE_THREADS files are written side by side."""
        if path not in self._early:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                from engine.config import CLIP_WRITE_THREADS

                self._pool = ThreadPoolExecutor(max_workers=CLIP_WRITE_THREADS)
            self._early[path] = self._pool.submit(write)
        return self._early[path]

    def _mix_path(self) -> Path:
        return confine(self.out_dir, f"mix.{self.fmt}")

    def file(self, name: str, data: bytes | bytearray | Path) -> None:
        """Start writing a file the engine encoded (a stem's, or "mix"'s) now, while the others still arrive;
        ``files`` then waits for it. One already started is not started again. ``data`` is the file's bytes,
        or the path of the whole file the engine left in the runtime folder (moved in from there)."""
        path = self._mix_path() if name == "mix" else stem_file(self.out_dir, name, self.fmt)
        self._start(path, partial(move_in, path, data, True) if isinstance(data, Path)
                    else partial(write_bytes, path, data, True))

    def audio(self, sample_rate: int, stems: dict[str, np.ndarray], mix: np.ndarray | None,
              time_reference: int = 0) -> list[Path]:
        """Write stems/<part>.<fmt> and mix.<fmt> (CLIP_WRITE_THREADS files at once); their paths.

        ``time_reference`` is their bext position in samples (the clip's bar on the project timeline).
        """
        paths = self._layout(list(stems), mix is not None)
        buffers = [*stems.values(), mix]
        return self._wait([(path, self._start(path, partial(write_audio, path, audio, sample_rate, self.fmt,
                                                             time_reference, True)))
                           for path, audio in zip(paths, buffers, strict=False)])

    def files(self, parts: list[str]) -> list[Path]:
        """Wait for the stems of ``parts`` and the mix, each started by ``file``; their paths."""
        paths = self._layout(parts, mix=True)
        unsent = [path.name for path in paths if path not in self._early]
        if unsent:
            raise ValueError(f"no file was given for {', '.join(unsent)}")
        return self._wait([(path, self._early[path]) for path in paths])

    def _layout(self, parts: list[str], mix: bool) -> list[Path]:
        """The path of each part's stem, then the mix's; two parts whose names make one file are refused."""
        paths: list[Path] = []
        for name in parts:
            path = stem_file(self.out_dir, name, self.fmt)
            if path in paths:
                raise ValueError(f"two parts would share the stem file {path.name}; part names must differ")
            paths.append(path)
        return [*paths, self._mix_path()] if mix else paths

    def _wait(self, started: list[tuple[Path, object]]) -> list[Path]:
        """Every write started finished (the pool let go); the paths written, or the first error raised (an
        OSError removes every file written)."""
        if not started:
            return []
        self._close_pool()
        paths = []
        for path, future in started:
            if future.exception() is None:
                paths.append(path)
                if path not in self.written:
                    self.written.append(path)
        for _, future in started:
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
