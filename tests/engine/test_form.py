"""Form: phrases and sections, cadences where phrases end, and the loop mode."""
from __future__ import annotations

import pytest

from engine.compose import form
from engine.music.theory import Key

C = Key("C", "major")
POP = [(6, 4, 1, 5), (1, 5, 6, 4)]


def degrees(f: form.Form) -> list[int]:
    return [bar.chord.degree for bar in f.bars]


@pytest.mark.parametrize(("phrases", "labels"), [(1, "A"), (2, "AA"), (3, "AAB")])
def test_short_clips_state_a_and_repeat_it(phrases: int, labels: str) -> None:
    assert form.section_labels(phrases, loop=False, seed=0) == labels


def test_four_phrases_are_aaba_or_abab_and_the_seed_chooses() -> None:
    seen = {form.section_labels(4, loop=False, seed=seed) for seed in range(20)}
    assert seen == {"AABA", "ABAB"}
    assert form.section_labels(8, loop=True, seed=3) == "A" * 8


def test_a_song_form_opens_on_i_closes_v_i_and_ends_phrases_on_v() -> None:
    f = form.plan(16, C, POP, seed=1, loop=False)
    d = degrees(f)
    assert d[0] == 1 and d[-2:] == [5, 1]
    assert [d[3], d[7], d[11]] == [5, 5, 5]  # half cadences before the next phrase
    assert [bar.phrase_end for bar in f.bars].count(True) == 4


def test_a_loop_cycles_its_progression_as_written_and_leads_back_to_the_start() -> None:
    f = form.plan(8, C, [(6, 4, 1, 5)], seed=1, loop=True)
    assert degrees(f) == [6, 4, 1, 5, 6, 4, 1, 5]  # no forced I, no V-I: V leads back into vi
    assert f.labels == "AA"
    # the loop returns on its odd bars; its answering bars and the last (a turnaround into bar 1) are new
    assert [bar.source for bar in f.bars] == [None] * 4 + [0, None, 2, None]
    assert f.bars[-1].phrase_end


def test_a_returning_section_opens_with_its_motif_and_answers_with_new_bars() -> None:
    f = form.plan(16, C, POP, seed=0, loop=False)
    assert f.labels in ("AABA", "ABAB")
    first_a = [b for b in f.bars if b.section == "A" and b.source is None and b.phrase == 0]
    assert len(first_a) == 4
    for bar in f.bars[4:]:
        if bar.section == "A":
            assert bar.source == (0 if bar.position == 0 else None)
    assert f.bars[2].motif_source == 0  # the motif returns inside the phrase, with new pitches
    # a returning section opens with the motif and answers afresh: no inner return the second time
    assert all(bar.motif_source is None for bar in f.bars if bar.source is None and bar.phrase > 0
               and f.labels[bar.phrase] in f.labels[:bar.phrase])
    long = form.plan(32, C, POP, seed=0, loop=False)  # eight-bar phrases: the motif is two bars
    assert [b.source for b in long.bars[8:12]] == [0, 1, None, None] or long.labels[1] == "B"


def test_a_twelve_bar_progression_is_the_form_itself() -> None:
    blues = [(1, 1, 1, 1, 4, 4, 1, 1, 5, 4, 1, 5)]
    f = form.plan(12, C, blues, seed=0, loop=False)
    assert degrees(f) == [1, 1, 1, 1, 4, 4, 1, 1, 5, 4, 5, 1]  # only the final cadence is set


def test_a_minor_key_cadences_on_the_major_dominant() -> None:
    f = form.plan(8, Key("A", "minor"), POP, seed=0, loop=False)
    assert f.bars[-2].chord.degree == 5 and f.bars[-2].chord.quality == ""
    assert f.bars[-1].chord.root_pc == 9 and f.bars[-1].chord.quality == "m"


def test_bad_requests_are_named() -> None:
    with pytest.raises(ValueError, match="at least 1 bar"):
        form.plan(0, C, POP, seed=0, loop=False)
    with pytest.raises(ValueError, match="at least one progression"):
        form.plan(4, C, [], seed=0, loop=False)
