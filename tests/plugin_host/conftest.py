"""Fixtures of the plugin host tests: a score made note by note (clip_scores.py)."""
from __future__ import annotations

import pytest
from symusic import Score

from tests.plugin_host.clip_scores import make_score


@pytest.fixture(scope="session")
def score() -> Score:
    """4 bars of 4/4 at 123 BPM: drums, bass, chords, melody from the first downbeat to the last bar line."""
    return make_score()
