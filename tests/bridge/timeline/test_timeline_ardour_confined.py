"""Issue 18: `place` into an Ardour session stays inside the session folder and keeps file modes.

A real session made by `place` (Ardour headless, its dummy backend); then its
interchange/<name>/audiofiles is swapped for a symlink to a folder outside the session.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bridge.timeline.ardour import ArdourSessionError
from bridge.timeline.place import place

pytestmark = [
    pytest.mark.ardour,
    pytest.mark.skipif(shutil.which("ardour7-lua") is None,
                       reason="Ardour 7 is not installed (apt-get install ardour)"),
]


def test_place_keeps_the_sessions_file_modes_and_refuses_a_symlinked_audiofiles_folder(tmp_path: Path,
                                                                                      clip_folder) -> None:
    previous = os.umask(0o022)
    try:
        place(clip_folder(), tmp_path / "song")
        folder = tmp_path / "song"
        modes = {path.name: oct(path.stat().st_mode & 0o777) for path in folder.glob("*.ardour")}
        assert modes == {"song.ardour": "0o644"}, modes  # a DAW running as another user can open it
        media = folder / "interchange" / "song" / "audiofiles"
        assert {oct(path.stat().st_mode & 0o777) for path in media.iterdir()} == {"0o644"}

        outside = tmp_path / "outside"
        outside.mkdir()
        shutil.rmtree(media)
        media.symlink_to(outside)
        with pytest.raises(ArdourSessionError, match="leads outside"):
            place(clip_folder(), folder, 3)
        assert list(outside.iterdir()) == [], "place wrote through the symlink"
        assert sorted(path.name for path in folder.glob("*.ardour")) == ["song.ardour"], "a refusal leaves nothing"
    finally:
        os.umask(previous)
