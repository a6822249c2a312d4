"""The committed checkpoint: it loads, and its card's validation loss is what its weights give."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from engine.model.generator import default_checkpoint, load
from engine.model.tokens import Vocab, build_tokenizer
from engine.training.train import evaluate, read_validation_shard, shard_path

CARD = Path(__file__).parents[2] / "engine" / "model" / "checkpoints" / "README.md"


@pytest.fixture(scope="module")
def generator():
    return load(default_checkpoint())


def test_checkpoint_loads_with_its_config_and_tokenizer(generator) -> None:
    assert generator.model.config.vocab_size == generator.vocab.size
    assert generator.vocab.size == Vocab(build_tokenizer()).size  # the shipped tokenizer config is today's
    record = generator.record
    assert record["parameters"] == generator.model.num_parameters()
    assert default_checkpoint().stat().st_size < 8 * 1024 * 1024


def test_validation_shard_loss_matches_the_record_and_the_card(generator) -> None:
    shard = read_validation_shard(shard_path(default_checkpoint()))
    assert len(shard) == generator.record["validation_shard_examples"]
    loss = evaluate(generator.model, shard, generator.vocab.pad)
    assert loss == pytest.approx(generator.record["validation_shard_loss"], abs=1e-3)
    card = CARD.read_text()
    quoted = re.search(r"validation shard[^\n]*?loss (\d+\.\d+)", card)
    assert quoted, "the card does not quote the shard's validation loss"
    assert float(quoted.group(1)) == pytest.approx(loss, abs=6e-4)
    full = re.search(r"validation loss (\d+\.\d+) \(perplexity (\d+\.\d+)\)", card)
    assert full and float(full.group(1)) == pytest.approx(generator.record["validation_loss"], abs=6e-4)
    assert float(full.group(2)) == pytest.approx(math.exp(generator.record["validation_loss"]), abs=6e-3)


def test_the_model_beats_chance_by_far(generator) -> None:
    shard = read_validation_shard(shard_path(default_checkpoint()))
    assert evaluate(generator.model, shard, generator.vocab.pad) < 0.5 * math.log(generator.vocab.size)
