"""A small tmpfs mounted for one test: a disk that really fills up (needs root; skipped otherwise)."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tiny_disk(folder: Path, size: str = "1m") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` at ``folder`` (made if missing) for the block; skips the test where it cannot."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> int:
    """Write a file in ``folder`` until the disk is full; returns the bytes written."""
    written = 0
    with open(folder / "filler", "wb", buffering=0) as handle:
        for size in (1 << 16, 4096, 512, 1):
            try:
                while True:
                    written += handle.write(b"\0" * size)
            except OSError:
                continue
    return written
