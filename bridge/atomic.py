"""Atomic file writes: a temp file in the same folder, fsync, rename, fsync of the folder.

A reader (or a crash) sees either no file or the whole file, never half of one.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temp path to write; on success it becomes ``path``. Refuses to replace a file
    unless ``overwrite`` is set."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:  # mkstemp makes 0600; the file gets the mode a plain open() would give it, or keeps its own
        os.fchmod(fd, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
    finally:
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        if not overwrite and path.exists():
            raise FileExistsError(f"{path} appeared while writing; refusing to overwrite it")
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    finally:
        tmp_path.unlink(missing_ok=True)


def _umask() -> int:
    """The process's umask, read without changing it where the platform says it (Linux), else briefly set."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def sweep_leftovers(folder: Path) -> list[Path]:
    """Remove temp files an interrupted write left in ``folder`` (ours by name: .NAME.*.part)."""
    removed = []
    for leftover in Path(folder).glob(".*.part"):
        leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed


def write_bytes(path: Path, data: bytes, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data)


def move_in(path: Path, source: Path, overwrite: bool = False) -> None:
    """Put the file ``source`` at ``path`` atomically (copied in the kernel, then fsynced and renamed), then
    remove ``source``: a file another process left for this one (the engine's handoff)."""
    import shutil

    with atomic_path(path, overwrite) as tmp:
        shutil.copyfile(source, tmp)
    Path(source).unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
