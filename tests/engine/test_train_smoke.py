"""The training loop runs end to end on a few MIDI files (a smoke test: a handful of steps)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from symusic import Note, Score, Tempo, TimeSignature, Track

from engine.model.generator import Generator, Request
from engine.model.tokens import Vocab, build_tokenizer
from engine.music.theory import Key, Meter
from engine.training.dataset import encode_midi_folder, sample_example
from engine.training.train import TrainConfig, read_validation_shard, shard_path, train
from tests.conftest import run_cli

TINY = TrainConfig(steps=3, batch_size=4, block_size=96, n_layer=1, n_head=2, n_embd=32, eval_every=3, bucket=1,
                   warmup_steps=1)


def _write_midi_folder(folder: Path) -> None:
    folder.mkdir()
    for k, (tonic, meter) in enumerate([(60, (4, 4)), (62, (3, 4)), (67, (6, 8))]):
        score = Score(480)
        score.tempos.append(Tempo(0, qpm=100 + 10 * k))
        score.time_signatures.append(TimeSignature(0, *meter))
        melody, bass = Track(name="tune", program=0), Track(name="bass", program=32)
        for i in range(32):
            melody.notes.append(Note(i * 240, 240, tonic + (0, 2, 4, 5, 7, 9, 11, 12)[i % 8], 90))
        for i in range(8):
            bass.notes.append(Note(i * 960, 960, tonic - 24 + (0, 7)[i % 2], 80))
        score.tracks.extend([melody, bass])
        score.dump_midi(str(folder / f"tune{k}.mid"))


def test_training_loop_writes_a_usable_checkpoint(tmp_path: Path) -> None:
    _write_midi_folder(tmp_path / "midi")
    vocab = Vocab(build_tokenizer())
    works = encode_midi_folder(tmp_path / "midi", vocab)
    assert len(works) == 3 and all(w.slots == [0, 3] for w in works)
    out = tmp_path / "tiny.pt"
    checkpoint = train(works, vocab, TINY, out, "three test files", progress=False)
    record = checkpoint["record"]
    assert out.is_file() and record["steps"] == 3 and record["tokens_seen"] > 0
    assert 0 < record["validation_loss"] < 10
    assert read_validation_shard(shard_path(out))
    again = train(works, vocab, TINY, tmp_path / "again.pt", "three test files", progress=False)
    assert again["record"]["validation_loss"] == record["validation_loss"]  # reproducible from the seed
    other = train(works, vocab, replace(TINY, seed=99), tmp_path / "other.pt", "three test files", progress=False)
    assert other["record"]["validation_loss"] != record["validation_loss"]
    notes = Generator(out).generate(Request("user", Key("C", "major"), Meter(4, 4), 100.0, 1, 2,
                                            {0: (60, 84), 3: (34, 62)}, False, 0))
    assert notes


def test_cadenza_train_fine_tunes_on_a_folder(tmp_path: Path, untrained_checkpoint: Path) -> None:
    _write_midi_folder(tmp_path / "midi")
    out = tmp_path / "tuned.pt"
    result = run_cli("train", "--data", str(tmp_path / "midi"), "--init", str(untrained_checkpoint), "--steps", "2",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "validation loss" in result.stdout and out.is_file()
    again = run_cli("train", "--data", str(tmp_path / "midi"), "--init", str(untrained_checkpoint), "--steps", "2",
                    "--out", str(out))
    assert again.returncode == 1 and "exists" in again.stderr


def _write_dense_take(folder: Path, melody: bool) -> None:
    """A take like a keyboard comping in four-note chords on every sixteenth (over a sparse melody):
    not one bar of the chords fits a 64-token context."""
    folder.mkdir()
    score = Score(480)
    score.tempos.append(Tempo(0, qpm=100))
    score.time_signatures.append(TimeSignature(0, 4, 4))
    piano = Track(name="piano", program=0)
    for i in range(8 * 16):
        for pitch in (48, 52, 55, 60):
            piano.notes.append(Note(i * 120, 120, pitch, 70))
    score.tracks.append(piano)
    if melody:
        tune = Track(name="flute", program=73)
        for i in range(8 * 2):
            tune.notes.append(Note(i * 960, 960, 79 + (0, 2, 4, 5)[i % 4], 90))
        score.tracks.append(tune)
    score.dump_midi(str(folder / "take.mid"))


def test_fine_tuning_on_takes_too_dense_for_the_context_validates_one_voice_at_a_time(
        tmp_path: Path, untrained_checkpoint: Path) -> None:
    _write_dense_take(tmp_path / "midi", melody=True)
    out = tmp_path / "tuned.pt"
    result = run_cli("train", "--data", str(tmp_path / "midi"), "--init", str(untrained_checkpoint), "--steps", "2",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    record = torch.load(out, weights_only=False)["record"]
    assert record["validation_voices"] == "one voice at a time" and record["validation_examples"] > 0
    assert 0 < record["validation_loss"] < 20 and read_validation_shard(shard_path(out))


def test_fine_tuning_on_music_no_bar_of_which_fits_the_context_says_so(tmp_path: Path,
                                                                       untrained_checkpoint: Path) -> None:
    _write_dense_take(tmp_path / "midi", melody=False)
    out = tmp_path / "tuned.pt"
    result = run_cli("train", "--data", str(tmp_path / "midi"), "--init", str(untrained_checkpoint), "--steps", "2",
                     "--out", str(out))
    assert result.returncode == 2 and not out.exists()
    assert "fits the model's context of 64 tokens" in result.stderr and "Traceback" not in result.stderr
    vocab = Vocab(build_tokenizer())
    works = encode_midi_folder(tmp_path / "midi", vocab)
    with pytest.raises(ValueError, match="no training window of the 1 works fits the model's context of 64"):
        sample_example(works, np.ones(1), np.random.default_rng(0), vocab, 64)


def test_cadenza_train_names_a_missing_folder(tmp_path: Path) -> None:
    result = run_cli("train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "x.pt"))
    assert result.returncode == 2 and "nope" in result.stderr
