"""Variation and recurrence figures, and the committed POP909 reference."""
from __future__ import annotations

import math

from engine.compose.pipeline import compose_with_provenance
from engine.evaluation import parts_form
from engine.understand.prompt import Overrides, understand

A = [(0, 60), (4, 62), (8, 64)]
B = [(0, 60), (6, 62), (8, 64)]


def test_a_part_that_plays_one_bar_over_and_over_has_no_variation_and_full_recurrence() -> None:
    bars = [A] * 4
    assert parts_form.variation(bars) == 0.0
    assert parts_form.recurrence(bars) == 1.0


def test_recurrence_counts_bars_whose_rhythm_returns_whatever_the_pitches() -> None:
    moved = [(s, p + 5) for s, p in A]
    bars = [A, B, moved, [(0, 50)]]
    assert parts_form.recurrence(bars) == 0.5       # A and its transposition share a rhythm
    assert parts_form.variation(bars) == 1.0        # every bar differs from the one before
    assert math.isnan(parts_form.recurrence([A, [], []]))  # one sounding bar: nothing to recur


def test_the_reference_holds_pop909_test_songs_per_role_and_length() -> None:
    reference = parts_form.load_reference()
    assert reference["songs"] == 45
    for length in ("4", "8", "16"):
        for role in ("melody", "bass", "comp"):
            row = reference["by_length"][length][role]
            assert 0 < row["recurrence"] < 1 and 0.5 < row["variation"] <= 1 and row["windows"] > 20
    assert parts_form.reference_for(reference, 9, "bass") == reference["by_length"]["8"]["bass"]


def test_the_summary_counts_learned_notes_per_style() -> None:
    entries = [{"style": "pop", "bars": 8, "learned": 90, "style_rhythm": 0, "rules": 10, "drums": 100,
                "parts": {"lead": {"role": "melody", "variation": 1.0, "recurrence": 0.5}}},
               {"style": "funk", "bars": 8, "learned": 0, "style_rhythm": 50, "rules": 0, "drums": 50,
                "parts": {}}]
    table = parts_form.summary(entries)
    assert table["pop"]["pitched_learned_share"] == 0.9
    assert table["funk"]["fully_learned_share"] == 0.0 and table["funk"]["pitched_learned_share"] == 1.0
    assert table["all"]["share_drums_as_rules"] == 140 / 300
    assert table["pop"]["melody"]["recurrence"] == 0.5


def test_a_string_quartets_cello_is_measured_as_the_bass_line_it_plays() -> None:
    spec = understand("Viennese waltz for string quartet in Eb major", Overrides(seed=0))
    assert [p.role for p in spec.parts].count("melody") >= 3  # both violins and the cello are melody parts
    score, _ = compose_with_provenance(spec)
    roles = {name: row["role"] for name, row in parts_form.clip_figures(score, spec).items()}
    assert roles == {"violin": "melody", "violin_2": "comp", "viola": "comp", "cello": "bass"}
    cello = next(t for t in score.tracks if t.name == "cello")
    violin = next(t for t in score.tracks if t.name == "violin")
    assert max(n.pitch for n in cello.notes) < min(n.pitch for n in violin.notes)  # it is the lowest line
