"""`cadenza generate --at BAR` and `cadenza place`, run as a user runs them (subprocesses, a real engine)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pretty_midi
import pytest
import rpp
from wavinfo import WavInfoReader

REPO = Path(__file__).resolve().parents[3]


def cadenza(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def test_generate_at_a_bar_then_place_it_in_a_reaper_project(tmp_path: Path) -> None:
    clip = tmp_path / "clip"
    done = cadenza("generate", "funk groove, bass and drums, 2 bars", "--at", "3", "--tempo", "100",
                   "--seed", "7", "--out", str(clip), "--quiet")
    assert done.returncode == 0, done.stderr
    # bar 3 in 4/4 at 100 BPM: 8 beats = 4.8 s = 230400 samples at 48 kHz
    expected_seconds, expected_sample = 4.8, 230400
    stems = sorted((clip / "stems").glob("*.wav"))
    assert stems
    for path in [*stems, clip / "mix.wav"]:
        assert WavInfoReader(str(path)).bext.time_reference == expected_sample, path.name
    midi = pretty_midi.PrettyMIDI(str(clip / "clip.mid"))
    first = min(note.start for instrument in midi.instruments for note in instrument.notes)
    assert first == pytest.approx(expected_seconds, abs=1e-3)

    done = cadenza("place", str(clip), "--into", str(tmp_path / "song.RPP"))
    assert done.returncode == 0, done.stderr
    assert "bar 3" in done.stdout
    project = rpp.loads((tmp_path / "song.RPP").read_text())
    items = list(project.iter("ITEM"))
    assert len(items) == 2 * len(stems)  # an audio item per stem and a MIDI item per part
    assert [float(item.find("POSITION")[1]) for item in items] == pytest.approx([expected_seconds] * len(items))


def test_place_refuses_bad_input_with_the_reason(tmp_path: Path, clip_folder) -> None:
    clip = clip_folder()
    cases = [
        (["place", str(tmp_path / "missing"), "--into", str(tmp_path / "a.mid")], "is not a folder"),
        (["place", str(clip), "--into", str(tmp_path / "a.wav")], "accepted are .dawproject"),
        (["place", str(clip), "--into", str(tmp_path / "a.mid"), "--at", "0"], "bars count from 1"),
    ]
    for args, message in cases:
        done = cadenza(*args, timeout=60)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"not a session")
    done = cadenza("place", str(clip), "--into", str(tmp_path / "photos"), timeout=60)
    assert done.returncode == 2 and "is not an Ardour session" in done.stderr
    assert [p.name for p in (tmp_path / "photos").iterdir()] == ["cat.jpg"]
    moved = clip_folder(start_bar=1)
    spec = json.loads((moved / "spec.json").read_text())
    (moved / "spec.json").write_text(json.dumps({**spec, "start_bar": 3}))  # clip.mid still starts at bar 1
    done = cadenza("place", str(moved), "--into", str(tmp_path / "b.mid"), timeout=60)
    assert done.returncode == 2 and "before bar 3, where spec.json says the clip starts" in done.stderr
    (tmp_path / "broken.dawproject").write_bytes(b"PK not a zip")
    done = cadenza("place", str(clip), "--into", str(tmp_path / "broken.dawproject"), timeout=60)
    assert done.returncode == 2 and "not a readable .dawproject" in done.stderr


def test_an_existing_project_is_never_overwritten(tmp_path: Path, clip_folder) -> None:
    clip = clip_folder()
    written = []
    for name in ("song.mid", "song.RPP", "song.dawproject"):
        first = cadenza("place", str(clip), "--into", str(tmp_path / name), timeout=60)
        assert first.returncode == 0, first.stderr
        before = (tmp_path / name).read_bytes()
        second = cadenza("place", str(clip), "--into", str(tmp_path / name), "--at", "4", timeout=60)
        assert second.returncode == 0, second.stderr
        assert (tmp_path / name).read_bytes() == before
        written.append(second.stdout.split(": ", 1)[1].splitlines()[0])
    assert [Path(path).name for path in written] == ["song-cadenza.mid", "song-cadenza.RPP",
                                                     "song-cadenza.dawproject"]


def test_place_says_when_the_project_tempo_differs_from_the_clip(tmp_path: Path, clip_folder) -> None:
    clip = clip_folder(tempo_bpm=100.0)
    first = cadenza("place", str(clip), "--into", str(tmp_path / "song.mid"), timeout=60)
    assert first.returncode == 0 and "note:" not in first.stdout
    slower = clip_folder(tempo_bpm=80.0, meter=(3, 4))
    done = cadenza("place", str(slower), "--into", str(tmp_path / "song.mid"), "--at", "3", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "rendered at 80 BPM but the project runs at 100 BPM at bar 3" in done.stdout
    assert "the clip is in 3/4 but the project is in 4/4" in done.stdout
