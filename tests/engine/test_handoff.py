"""The files a local engine leaves in the user's runtime folder for its own clients (engine/serving/local.py,
written by plugin_host/encode.py's leave_file)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.serving.local import HANDOFF_KEEP_SECONDS, Handoff
from plugin_host.encode import leave_file


def test_handed_files_are_private_whole_and_swept_when_nobody_takes_them(tmp_path: Path) -> None:
    handoff = Handoff("secret", tmp_path / "handoff")
    path = leave_file(handoff.folder, b"RIFF and the rest", "wav")
    assert path.parent == handoff.folder and path.suffix == ".wav"
    assert path.read_bytes() == b"RIFF and the rest"
    assert path.stat().st_mode & 0o777 == 0o600 and handoff.folder.stat().st_mode & 0o777 == 0o700
    assert leave_file(handoff.folder, b"another", "wav") != path  # every file gets a name of its own
    handoff.sweep(now=time.time() + HANDOFF_KEEP_SECONDS - 30)
    assert path.exists(), "a file was swept before a client could take it"
    handoff.sweep(now=time.time() + HANDOFF_KEEP_SECONDS + 30)
    assert not any(handoff.folder.iterdir())
    handoff.close()
    assert not handoff.folder.exists()
    handoff.sweep()  # a folder that went is made again, for the next render
    assert handoff.folder.is_dir()


def test_a_file_is_left_only_in_a_known_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="audio format must be one of"):
        leave_file(tmp_path, b"data", "../../x")


def test_only_the_announced_secret_gets_files_handed_over(tmp_path: Path) -> None:
    handoff = Handoff("the-secret", tmp_path / "handoff")
    assert handoff.accepts("the-secret")
    assert not handoff.accepts("") and not handoff.accepts("the-secret ") and not handoff.accepts("THE-SECRET")
