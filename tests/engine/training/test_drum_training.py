"""`cadenza train --drums` trains the drum model on a Groove folder, reproducibly from a seed."""
from pathlib import Path

import torch

from bridge.cli import main as cli_main
from engine.model.drums import DrumConfig, DrumGenerator
from engine.training.drums import DrumTrainConfig, run

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "groove"
TINY = DrumConfig(hidden=16, layers=1, genre_dim=4)


def _train(tmp_path: Path, name: str, seed: int) -> dict:
    config = DrumTrainConfig(seed=seed, steps=6, batch_size=4, eval_every=3, warmup_steps=2, min_genre_recordings=1)
    record = run(FIXTURES, tmp_path / name, config, model_config=DrumConfig(**vars(TINY)), log=lambda _: None)
    return record


def test_same_seed_gives_the_same_weights_and_another_seed_differs(tmp_path):
    _train(tmp_path, "a.pt", 3)
    _train(tmp_path, "b.pt", 3)
    _train(tmp_path, "c.pt", 4)
    a, b, c = (torch.load(tmp_path / n, weights_only=False)["state"] for n in ("a.pt", "b.pt", "c.pt"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_checkpoint_records_validation_losses_and_loads_as_a_generator(tmp_path):
    record = _train(tmp_path, "d.pt", 1)
    assert [h["step"] for h in record["history"]] == [3, 6]
    assert set(record["validation"]) == {"hit", "velocity", "offset", "total"}
    assert record["recordings_train"] == 2 and record["recordings_validation"] == 2
    assert record["genre_tempo"] == {"rock": (140.0, 140.0), "funk": (95.0, 95.0)}
    assert [p.shape for p in record["primers"]["rock"]] == [(32, 27)]  # bars 2-3 of the 4-bar rock beat
    generator = DrumGenerator.load(tmp_path / "d.pt")
    assert generator.config.genres == ("funk", "rock")
    hits = generator.generate([16, 16], "rock", 120.0, [False, True], [True, False], seed=0)
    assert all(0 <= h.step < 16 and h.bar in (0, 1) for h in hits)


def test_cli_trains_drums_from_a_groove_folder(tmp_path, capsys):
    out = tmp_path / "cli.pt"
    assert cli_main(["train", "--drums", "--data", str(FIXTURES), "--out", str(out), "--steps", "2"]) == 0
    assert out.is_file() and "validation loss" in capsys.readouterr().out
    assert DrumGenerator.load(out).record["train_config"]["steps"] == 2


def test_cli_records_a_genre_balance_in_the_command_that_reproduces_the_run(tmp_path, capsys):
    out = tmp_path / "bal.pt"
    assert cli_main(["train", "--drums", "--data", str(FIXTURES), "--out", str(out), "--steps", "2",
                     "--genre-balance", "0.5"]) == 0
    record = DrumGenerator.load(out).record
    assert record["train_config"]["genre_balance"] == 0.5 and record["command"].endswith("--genre-balance 0.5")
    assert cli_main(["train", "--drums", "--data", str(FIXTURES), "--out", str(tmp_path / "x.pt"),
                     "--genre-balance", "2"]) == 2
    assert "--genre-balance must be 0-1" in capsys.readouterr().err


def test_cli_drums_without_data_says_what_folder_it_needs(tmp_path, capsys):
    assert cli_main(["train", "--drums", "--out", str(tmp_path / "x.pt")]) == 2
    assert "Groove MIDI Dataset folder" in capsys.readouterr().err


def test_genre_balanced_sampling_hears_a_small_genre_more_often_than_its_share_of_windows():
    import numpy as np
    import pytest

    from engine.training.drums import GenreSampler

    genres = [0] * 900 + [1] * 100  # rock-like against a small genre
    share = {}
    for balance in (1.0, 0.5, 0.0):
        drawn = np.array(GenreSampler(genres, balance).draw(np.random.default_rng(0), 20000))
        share[balance] = float((drawn >= 900).mean())
    assert abs(share[1.0] - 0.10) < 0.01          # every window alike
    assert abs(share[0.5] - 0.25) < 0.015         # sqrt(100) / (sqrt(900) + sqrt(100))
    assert abs(share[0.0] - 0.50) < 0.015         # genres alike
    with pytest.raises(ValueError, match="genre_balance must be 0-1"):
        GenreSampler(genres, 1.5)
