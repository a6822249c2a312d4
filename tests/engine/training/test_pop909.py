"""POP909 loader: bars on the annotated beats, tonic moved to C, bass split from the piano."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.training import pop909
from tests.engine.training.pop909_fixture import BARS, MELODY, write_song


def test_a_song_becomes_bars_in_c_with_melody_bass_and_comping(tmp_path: Path) -> None:
    song = pop909.load_song(write_song(tmp_path))
    assert len(song.segments) == 1
    mode, bars = song.segments[0]
    assert mode == "major" and len(bars) == BARS  # nine downbeats annotated: eight whole bars
    first = bars[0]
    assert first.beats == 4
    assert first.chords == ((0, "maj"), (0, "maj"))      # D major in D is I
    assert bars[4].chords == ((5, "maj"), (5, "maj"))    # G major in D is IV
    # D major moved down two semitones to C: the melody D5 E5 F#5 E5 reads C5 D5 E5 D5 on the beats
    assert [(n.step, n.pitch) for n in first.parts["melody"]] == [(4 * b, p - 2) for b, p in enumerate(MELODY)]
    assert [(n.step, n.pitch) for n in first.parts["bass"]] == [(0, 36), (8, 36)]
    assert [(n.step, n.pitch) for n in bars[4].parts["bass"]] == [(0, 41), (8, 41)]
    assert sorted({n.step for n in first.parts["comp"]}) == [4, 12]
    assert all(n.pitch >= 60 for n in first.parts["comp"])
    assert all(n.length == 4 for n in first.parts["melody"])  # 460 ticks of 480 round to a quarter


def test_a_key_above_f_sharp_moves_down_to_c(tmp_path: Path) -> None:
    song = pop909.load_song(write_song(tmp_path, key="A:min"))
    mode, bars = song.segments[0]
    assert mode == "minor"
    assert bars[0].chords[0] == (5, "maj")  # D is the minor key's iv... a major IV chord relative to A
    assert bars[0].parts["melody"][0].pitch == 74 + 3  # A -> C is up 3 semitones


@pytest.mark.parametrize(("label", "parsed"), [
    ("C:maj", (0, "maj")), ("F#:maj7/5", (6, "maj")), ("Bb:min7", (10, "min")), ("Eb:hdim7", (3, "dim")),
    ("A:sus4(b7)", (9, "sus")), ("G:aug", (7, "aug")), ("Db:7", (1, "maj")), ("N", None)])
def test_chord_labels_read_as_root_and_quality(label: str, parsed) -> None:
    assert pop909.chord_label(label) == parsed


def test_a_bad_note_name_and_a_missing_file_are_named(tmp_path: Path) -> None:
    with pytest.raises(pop909.Pop909Error, match="not a note name: 'H'"):
        pop909.chord_label("H:maj")
    folder = write_song(tmp_path)
    (folder / "chord_midi.txt").unlink()
    with pytest.raises(pop909.Pop909Error, match="chord_midi.txt is missing"):
        pop909.load_song(folder)
    with pytest.raises(pop909.Pop909Error, match="no POP909 song folders"):
        pop909.song_dirs(tmp_path / "empty")


def test_splits_hold_out_one_song_in_ten() -> None:
    splits = [pop909.split_of(n) for n in range(1, 910)]
    assert splits.count("validation") == 45 and splits.count("test") == 45
    assert splits.count("train") == 909 - 90


def test_the_manifest_check_finds_a_changed_and_a_missing_file(tmp_path: Path) -> None:
    write_song(tmp_path, 1)
    write_song(tmp_path, 2)
    manifest = tmp_path / "manifest.json"
    pop909.write_manifest(tmp_path, "abc123", manifest)
    recorded = json.loads(manifest.read_text())
    assert recorded["licence"] == "MIT" and recorded["commit"] == "abc123" and len(recorded["files"]) == 8
    assert pop909.check(tmp_path, manifest) == []
    (tmp_path / "POP909" / "001" / "key_audio.txt").write_text("0 10 C:maj\n")
    (tmp_path / "POP909" / "002" / "002.mid").unlink()
    assert pop909.check(tmp_path, manifest) == ["differs: POP909/001/key_audio.txt", "missing: POP909/002/002.mid"]


def test_the_committed_manifest_names_all_909_songs() -> None:
    recorded = json.loads(pop909.MANIFEST.read_text())
    assert recorded["songs"] == 909 and recorded["licence"] == "MIT"
    assert recorded["source"] == "https://github.com/music-x-lab/POP909-Dataset"
    assert len(recorded["files"]) == 909 * 4
