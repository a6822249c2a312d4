"""Where it may write: names from MIDI files or engines never lead outside the user's folder."""
from pathlib import Path

import numpy as np
import pytest

from bridge.clip_files import write_clip
from bridge.paths import PathEscape, confine, safe_name


@pytest.mark.parametrize(("name", "safe"), [
    ("bass", "bass"), ("../../etc/passwd", "etc_passwd"), ("/abs/path", "abs_path"), ("..", "part"),
    ("Lead Synth #1", "Lead_Synth_1"), (".hidden", "hidden"), ("", "part"),
])
def test_safe_name_keeps_only_plain_file_name_characters(name, safe):
    assert safe_name(name) == safe


@pytest.mark.parametrize("relative", ["../x.wav", "/etc/x.wav", "stems/../../x.wav"])
def test_confine_refuses_dotdot_and_absolute_paths(tmp_path, relative):
    with pytest.raises(PathEscape):
        confine(tmp_path, relative)


def test_confine_refuses_a_symlink_that_escapes(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "clip"
    root.mkdir()
    (root / "stems").symlink_to(outside)
    with pytest.raises(PathEscape, match="outside"):
        confine(root, "stems/bass.wav")


def test_a_hostile_track_name_lands_inside_the_clip_folder(tmp_path: Path):
    audio = np.zeros((480, 2), np.float32)
    out = tmp_path / "clip"
    written = write_clip(out, {"parts": []}, b"MThd", 48000, {"../../evil": audio}, audio)
    assert all(out.resolve() in path.parents for path in written)
    assert not (tmp_path / "evil.wav").exists()
    assert (out / "stems" / "evil.wav").exists()
