"""Where third-party plugins may be loaded from: the user's standard plugin folders plus any given.

A plugin is native code run in the render worker. The engine loads only bundles inside these
folders, so a request cannot make it load (and run) an arbitrary library from anywhere on disk,
e.g. one a malicious session file dropped in /tmp. A path is judged after resolving symlinks.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from engine.errors import SpecError


def standard_plugin_folders() -> list[Path]:
    """The VST3/AU folders plugin installers use on this platform (Steinberg's and Apple's lists)."""
    home = Path.home()
    if sys.platform == "darwin":
        return [home / "Library/Audio/Plug-Ins/VST3", Path("/Library/Audio/Plug-Ins/VST3"),
                home / "Library/Audio/Plug-Ins/Components", Path("/Library/Audio/Plug-Ins/Components")]
    if sys.platform == "win32":
        common = Path(os.environ.get("COMMONPROGRAMFILES", r"C:\Program Files\Common Files"))
        return [common / "VST3", Path(os.environ.get("LOCALAPPDATA", home)) / "Programs/Common/VST3"]
    return [home / ".vst3", Path("/usr/lib/vst3"), Path("/usr/local/lib/vst3")]


def plugin_folders(extra: Iterable[Path | str] = ()) -> tuple[Path, ...]:
    """The standard folders plus ``extra`` (``cadenza serve --plugin-folder``), resolved."""
    return tuple(Path(folder).expanduser().resolve() for folder in [*standard_plugin_folders(), *extra])


def check_plugin_path(path: str, folders: Iterable[Path], field: str) -> None:
    """Refuse ``path`` (SpecError naming ``field`` and the path) unless it lies inside one of ``folders``."""
    folders = list(folders)
    resolved = Path(path).expanduser().resolve()
    if any(resolved.is_relative_to(folder) and resolved != folder for folder in folders):
        return
    listing = ", ".join(str(folder) for folder in folders)
    raise SpecError(field, f"{path} is not in a plugin folder; plugins load only from {listing} "
                           "(add a folder with `cadenza serve --plugin-folder DIR`)")
