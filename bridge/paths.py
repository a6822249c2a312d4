"""Keep every file Cadenza writes inside the folder the user named.

Names that come from elsewhere (track names inside a MIDI file, part names from an engine)
become file names here; `..`, absolute paths and symlinks that lead outside are refused.
"""
from __future__ import annotations

import re
from pathlib import Path

from engine.errors import Refused

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
NAME_MAX = 100


class PathEscape(Refused):
    """A path would land outside the folder it must stay in."""


def safe_name(name: str, fallback: str = "part") -> str:
    """A file-name-safe version of ``name``: letters, digits, '.', '_' and '-', no leading dot."""
    cleaned = _UNSAFE.sub("_", name).strip("._")[:NAME_MAX]
    return cleaned or fallback


def confine(root: Path, relative: str | Path) -> Path:
    """``root / relative``, refusing anything that resolves (symlinks followed) outside ``root``."""
    root_resolved = Path(root).resolve()
    relative = Path(relative)
    if relative.is_absolute() or ".." in relative.parts:
        raise PathEscape(f"{relative} is not a plain relative path inside {root}")
    target = (root_resolved / relative).resolve()
    if target != root_resolved and root_resolved not in target.parents:
        raise PathEscape(f"{root / relative} leads outside {root} (through a symlink?); refusing to write there")
    return root_resolved / relative
