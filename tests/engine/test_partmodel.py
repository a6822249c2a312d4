"""The part model's writer: the grammar holds whatever the weights (a model trained here for a
few steps on fixture songs), and the committed checkpoint loads with its record."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.model import parts as partmodel
from engine.model.parts import PlannedBar
from engine.training import train_parts
from tests.engine.training.pop909_fixture import write_song

C_MAJOR = {0, 2, 4, 5, 7, 9, 11}
E_FLAT_MAJOR = {3, 5, 7, 8, 10, 0, 2}


@pytest.fixture(scope="module")
def barely_trained(tmp_path_factory) -> partmodel.PartModel:
    root = tmp_path_factory.mktemp("pop909")
    for number in (1, 2, 3):
        write_song(root, number)
    out = root / "parts.pt"
    config = train_parts.PartTrainConfig(steps=4, batch_size=2, warmup_steps=2)
    record = train_parts.train(root, out, config, progress=lambda message: None, limit=3)
    assert record["steps"] == 4 and record["data"]["splits"]["train"]["songs"] == 3
    return partmodel.PartModel(out)


def write(model, role: str, bar: PlannedBar, low: int = 40, high: int = 80, seed: int = 0):
    return model.write_bar(role, bar, [], mode="major", beats=4, energy=2, tonic_pc=3, scale_pcs=E_FLAT_MAJOR,
                           low=low, high=high, seed=seed)


@pytest.mark.parametrize("role", ["melody", "bass", "comp"])
@pytest.mark.parametrize("seed", range(4))
def test_every_note_is_in_range_in_the_key_and_in_the_bar(barely_trained, role: str, seed: int) -> None:
    bar = PlannedBar(0, ((5, "min"), (5, "min")), None, 12)  # a borrowed iv (Ab minor in Eb) in a bar of 3/4
    notes, tokens = write(barely_trained, role, bar, seed=seed)
    assert notes, "a part plays in every bar it is asked for"
    assert tokens[:4] == partmodel.VOCAB.bar_header(0, bar.chords)
    for n in notes:
        assert 40 <= n.pitch <= 80 and n.pitch % 12 in E_FLAT_MAJOR | {8, 11}  # the scale or the chord
        assert 0 <= n.step < 12 and n.length >= 1
    if role == "melody":
        assert len({n.step for n in notes}) == len(notes)  # one note at a time


def test_a_given_rhythm_is_kept_exactly_and_only_pitches_are_chosen(barely_trained) -> None:
    rhythm = ((0, 3), (3, 3), (6, 2), (10, 6))
    notes, _ = write(barely_trained, "bass", PlannedBar(1, ((0, "maj"), (0, "maj")), rhythm))
    assert [(n.step, n.length) for n in notes] == list(rhythm)


@pytest.mark.parametrize("seed", range(4))
def test_a_turn_keeps_the_idiom_up_to_its_step_and_the_model_plays_the_rest(barely_trained, seed: int) -> None:
    rhythm = ((0, 2), (4, 2), (8, 2), (12, 2))
    notes, _ = write(barely_trained, "bass", PlannedBar(1, ((0, "maj"), (0, "maj")), rhythm, free_from=12),
                     seed=seed)
    assert [(n.step, n.length) for n in notes if n.step < 12] == [(0, 2), (4, 2), (8, 2)]  # the idiom, kept
    assert all(12 <= n.step < 16 for n in notes[3:])  # the model's own onsets (if any) only after the turn starts
    empty = PlannedBar(1, ((0, "maj"), (0, "maj")), ((14, 2),), free_from=8)  # the idiom starts after the turn
    assert write(barely_trained, "bass", empty, seed=seed)[0], "a part plays in every bar it is asked for"


def test_the_same_seed_writes_the_same_bar(barely_trained) -> None:
    bar = PlannedBar(2, ((7, "maj"), (7, "maj")))
    assert write(barely_trained, "comp", bar, seed=5) == write(barely_trained, "comp", bar, seed=5)


def test_bad_requests_are_named(barely_trained) -> None:
    bar = PlannedBar(0, (None, None))
    with pytest.raises(ValueError, match="role must be one of melody, bass, comp, got 'drums'"):
        write(barely_trained, "drums", bar)
    with pytest.raises(ValueError, match="1-16 sixteenth steps"):
        write(barely_trained, "bass", PlannedBar(0, (None, None), None, 20))
    with pytest.raises(ValueError, match="pitch range is empty"):
        write(barely_trained, "bass", bar, low=60, high=50)


def test_a_checkpoint_of_another_vocabulary_is_refused(tmp_path: Path, barely_trained) -> None:
    import torch

    checkpoint = torch.load(barely_trained_path(barely_trained), weights_only=False)
    checkpoint["vocab"] = checkpoint["vocab"][:-1]
    torch.save(checkpoint, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="another part vocabulary"):
        partmodel.PartModel(tmp_path / "other.pt")


def barely_trained_path(model: partmodel.PartModel) -> Path:
    return model.path


def test_the_committed_checkpoint_is_small_and_says_how_it_was_made() -> None:
    path = partmodel.default_checkpoint()
    assert path.stat().st_size < 4_000_000
    model = partmodel.load()
    record = model.record
    assert record["data"]["name"] == "POP909" and record["data"]["licence"] == "MIT"
    assert set(record["validation_loss"]) == {"melody", "bass", "comp", "all"}
    assert record["train_seconds"] < 35 * 60


def test_the_committed_model_card_is_the_checkpoints_own_record() -> None:
    import torch

    path = partmodel.default_checkpoint()
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    card = train_parts.card(checkpoint["record"], checkpoint["model_config"], path.name)
    assert path.with_suffix(".md").read_text() == card + "\n"
