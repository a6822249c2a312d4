"""The committed drum card is what the committed drum checkpoint's own record renders."""
from pathlib import Path

from engine.model.drums import default_checkpoint
from engine.training.drum_card import card_for


def test_committed_card_matches_the_checkpoint_record():
    card = Path(default_checkpoint()).with_suffix(".md")
    assert card.read_text() == card_for(default_checkpoint())
    assert "CC BY 4.0" in card.read_text() and "validation loss" in card.read_text()
