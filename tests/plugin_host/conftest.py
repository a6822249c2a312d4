"""Fixtures of the plugin host tests: a score made note by note (clip_scores.py), our VST3 plug-ins."""
from __future__ import annotations

from pathlib import Path

import pytest
from symusic import Score

from tests.plugin_host.clip_scores import make_score


@pytest.fixture(scope="session")
def score() -> Score:
    """4 bars of 4/4 at 123 BPM: drums, bass, chords, melody from the first downbeat to the last bar line."""
    return make_score()


@pytest.fixture(scope="session")
def cadenza_plugins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Cadenza's own VST3 plug-ins, compiled from tests/plugins/ with g++: {"CadenzaSynth": bundle, ...}."""
    from tests.plugins.build import build_all

    return build_all(tmp_path_factory.mktemp("vst3"))
