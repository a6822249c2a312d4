"""Where third-party plugins, presets and SoundFonts may be loaded from: the standard folders plus any given.

A plugin is native code run in the render worker. The engine loads only bundles inside these
folders, so a request cannot make it load (and run) an arbitrary library from anywhere on disk,
e.g. one a malicious session file dropped in /tmp. Presets and SoundFonts a request names are
files the engine parses: they are confined too, so a request cannot make it read any file it can
(and learn from the error whether the file exists). A path is judged after resolving symlinks.
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


def check_plugin_path(path: str, folders: Iterable[Path], field: str) -> str:
    """``path`` resolved (symlinks followed), if it lies inside one of ``folders``; else SpecError naming
    ``field`` and the path.

    The caller must load the path returned, never ``path`` itself: a symlink checked and then
    swapped would otherwise lead the loader out of the folders (time of check vs time of use).
    """
    return str(confined_path(path, folders, field, "plugin", "--plugin-folder"))


def confined_path(path: str, folders: Iterable[Path], field: str, what: str, flag: str) -> Path:
    """``path`` resolved, if inside one of ``folders``; SpecError naming ``field`` otherwise.

    Nothing about the file (whether it exists, what it holds) is told before the path is judged."""
    folders = list(folders)
    if "\0" in path:
        raise SpecError(field, f"{path!r} holds a NUL character; give a plain file path")
    try:
        resolved = Path(path).expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as error:  # a symlink loop, a name too long
        raise SpecError(field, f"{path!r} is not a usable path ({error})") from None
    if any(resolved.is_relative_to(folder) and resolved != folder for folder in folders):
        return resolved
    listing = ", ".join(str(folder) for folder in folders)
    raise SpecError(field, f"{path} is not in a {what} folder; {what}s load only from {listing} "
                           f"(add a folder with `cadenza serve {flag} DIR`)")


def soundfont_folders(plugin_folders: Iterable[Path] = ()) -> tuple[Path, ...]:
    """The folders a request's SoundFont may come from, resolved: those of the banks
    plugin_host/data/sounds.toml lists (the system's and Homebrew's SoundFont folders, the user's
    ~/.local/share/soundfonts), the folder of pretty_midi's TimGM6mb, and ``plugin_folders``."""
    from plugin_host.soundfont import default_soundfont
    from plugin_host.sounds import bank_candidates

    folders = [path.parent for path in bank_candidates()] + [default_soundfont().parent, *plugin_folders]
    unique: dict[Path, None] = {}
    for folder in folders:
        try:
            unique.setdefault(Path(folder).expanduser().resolve(), None)
        except (OSError, RuntimeError):  # a folder that cannot be resolved cannot hold an allowed file
            continue
    return tuple(unique)


def check_soundfont_path(path: str, plugin_folders: Iterable[Path], field: str = "soundfont") -> str:
    """``path`` resolved, if it lies inside a SoundFont folder (``soundfont_folders``) and names an
    .sf2 or .sf3 file; SpecError naming ``field`` otherwise. As for plugins, the caller loads the
    path returned; a path outside the folders is never opened."""
    from plugin_host.soundfont import SOUNDFONT_SUFFIXES

    resolved = confined_path(path, soundfont_folders(plugin_folders), field, "SoundFont", "--plugin-folder")
    if resolved.suffix.lower() not in SOUNDFONT_SUFFIXES:
        raise SpecError(field, f"{path} is not an .sf2 or .sf3 file")
    return str(resolved)


def check_preset_path(preset: str, plugin: str | None, folders: Iterable[Path], field: str) -> str:
    """A preset a request names, as the path to load: a file inside one of ``folders`` (resolved), or
    the preset shipped for ``plugin`` under that name. SpecError naming ``field`` otherwise.

    Any other path is never opened, so a request cannot learn whether a file exists elsewhere or
    what keys a JSON file holds. (The CLI sends a shipped preset's name as an absolute path in the
    current folder: its last part is the name.)"""
    from plugin_host.instruments import preset_folder, preset_names

    if "\0" in preset:
        raise SpecError(field, f"{preset!r} holds a NUL character; give a preset name or file")
    folders = list(folders)
    try:
        return str(confined_path(preset, folders, field, "preset", "--plugin-folder"))
    except SpecError:
        pass
    if plugin is not None and Path(preset).suffix in ("", ".json"):
        shipped = preset_folder(plugin) / f"{Path(preset).stem}.json"
        if shipped.is_file():
            return str(shipped)
    names = ", ".join(preset_names(plugin)) if plugin else ""
    shipped_text = f"a preset shipped for {Path(plugin).stem} ({names or 'none are'})" if plugin else \
        "a preset for a plugin this request names"
    raise SpecError(field, f"{preset} is neither {shipped_text} nor a file in a plugin folder "
                           f"({', '.join(str(folder) for folder in folders)})")
