"""The Groove loader reads a local folder into step grids; the manifest pins the dataset."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.training import groove

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "groove"


def test_loader_reads_every_recording_with_its_labels():
    performances = groove.load(FIXTURES)
    by_genre = {p.genre: p for p in performances}
    assert sorted(by_genre) == ["funk", "jazz", "latin", "rock"]
    rock, jazz, fill, latin = by_genre["rock"], by_genre["jazz"], by_genre["funk"], by_genre["latin"]
    assert (rock.kind, rock.split, rock.bpm, rock.bars, rock.steps_per_bar) == ("beat", "train", 140.0, 4, 16)
    assert (latin.numerator, latin.denominator, latin.steps_per_bar, latin.bars) == (3, 4, 12, 4)
    assert fill.kind == "fill" and fill.fill.all()
    for p in performances:
        assert p.hits.shape == p.velocity.shape == p.offset.shape == (p.bars * p.steps_per_bar, groove.N_VOICES)
        assert (p.velocity[p.hits] > 0).all() and (p.velocity[~p.hits] == 0).all()
        assert p.offset.min() >= -0.5 and p.offset.max() < 0.5
        assert p.phrase_start[0]
    # the jazz drummer plays behind and ahead of the grid: offsets are not all zero
    assert np.abs(jazz.offset[jazz.hits]).mean() > 0.02


def test_loader_keeps_only_the_asked_splits():
    assert {p.split for p in groove.load(FIXTURES, ("validation",))} == {"validation"}
    assert len(groove.load(FIXTURES, ("train",))) == 2


def test_a_folder_without_info_csv_is_refused_with_what_is_expected(tmp_path):
    with pytest.raises(groove.GrooveError, match="info.csv"):
        groove.load(tmp_path)


def test_an_unknown_split_is_refused_naming_the_accepted_ones():
    with pytest.raises(groove.GrooveError, match="train, validation, test"):
        groove.load(FIXTURES, ("dev",))


def test_a_missing_listed_file_is_named(tmp_path):
    copy = tmp_path / "groove"
    shutil.copytree(FIXTURES, copy)
    victim = next(copy.rglob("*.mid"))
    victim.unlink()
    with pytest.raises(groove.GrooveError, match=victim.name):
        groove.load(copy)


def test_tom_heavy_bar_in_a_beat_recording_is_a_fill_and_the_next_bar_starts_a_phrase():
    hits = np.zeros((4 * 16, groove.N_VOICES), bool)
    hits[::4, 0] = True            # kick on every beat
    hits[4::8, 1] = True           # snare on 2 and 4
    hits[2 * 16 + 8: 3 * 16: 2, 4] = True  # bar 3: four low-tom hits
    fill, start = groove.bar_flags(hits, 16, "beat")
    assert fill.tolist() == [False, False, True, False]
    assert start.tolist() == [True, False, False, True]


def test_committed_manifest_names_every_groove_file_with_its_checksum_and_licence():
    manifest = json.loads(groove.MANIFEST.read_text())
    midi = [name for name in manifest["files"] if name.endswith(".mid")]
    assert len(midi) == 1150 and "info.csv" in manifest["files"]
    assert manifest["licence"].startswith("CC BY 4.0")
    assert len(manifest["commit"]) == 40
    assert all(len(digest) == 64 for digest in manifest["files"].values())


def test_verify_finds_a_changed_file(tmp_path):
    copy = tmp_path / "groove"
    shutil.copytree(FIXTURES, copy)
    manifest = tmp_path / "manifest.json"
    groove.write_manifest(copy, "0" * 40, out=manifest)
    assert groove.verify(copy, manifest) == []
    victim = next(copy.rglob("*.mid"))
    victim.write_bytes(victim.read_bytes() + b"\0")
    assert groove.verify(copy, manifest) == [str(victim.relative_to(copy))]
