"""The taste model: features read from real scores, a fit that learns a preference, reasons that steer."""
from __future__ import annotations

import numpy as np
from symusic import Note, Score, Track

from engine.sessions import taste


def _score(notes_per_bar: int, bars: int = 4, offbeat: bool = False) -> Score:
    score = Score(480)
    track = Track(name="melody", program=0)
    step = 1920 // notes_per_bar
    for b in range(bars):
        for k in range(notes_per_bar):
            track.notes.append(Note(b * 1920 + k * step + (120 if offbeat else 0), step // 2, 60 + k % 5, 80))
    score.tracks.append(track)
    return score


def test_features_measure_density_and_syncopation() -> None:
    sparse, busy = taste.features(_score(2)), taste.features(_score(16))
    assert sparse["density"] == 2 and busy["density"] == 16
    assert taste.features(_score(4, offbeat=True))["syncopation"] == 1.0
    assert taste.features(_score(4))["syncopation"] == 0.0
    assert taste.features(_score(4))["repetition"] == 1.0  # every bar repeats the first


def test_fit_learns_to_prefer_what_was_kept() -> None:
    rng = np.random.default_rng(0)
    verdicts = []
    for i in range(20):
        n = int(rng.choice([2, 3, 4, 12, 14, 16]))
        verdicts.append({"take": str(i), "verdict": "keep" if n <= 4 else "reject", "reason": "", "rating": 0,
                         "features": taste.features(_score(n))})
    model = taste.fit(verdicts, use_reasons=False)
    assert model.weights[taste.FEATURES.index("density")] < 0
    candidates = [taste.features(_score(n)) for n in (16, 3, 12)]
    assert model.rank(candidates)[0] == 1
    assert any("sparser" in line for line in model.describe())


def test_a_reason_steers_before_any_learning() -> None:
    verdict = {"take": "a", "verdict": "reject", "reason": "way too busy", "rating": 0,
               "features": taste.features(_score(8))}
    model = taste.fit([verdict])
    assert model.steer[taste.FEATURES.index("density")] < 0
    assert model.rank([taste.features(_score(16)), taste.features(_score(2))])[0] == 1
