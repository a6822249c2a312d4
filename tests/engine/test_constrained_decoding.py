"""Constrained decoding keeps bars, meter grid, key and ranges, whatever the weights say.

Checked on the committed (trained) checkpoint over many seeds, meters and keys, and on a
random-weights model, whose preferences are noise: the grammar alone must keep the request.
"""
from __future__ import annotations

import pytest

from engine.config import TICKS_PER_QUARTER
from engine.model.decode import Constraints, Grammar, allowed_pitch_classes, meter_grid
from engine.model.generator import Request, load
from engine.music.theory import Key, Meter, parse_key

VOICES = {0: (60, 84), 1: (53, 77), 2: (45, 69), 3: (34, 62)}
CASES = [("A minor", Meter(4, 4)), ("D dorian", Meter(7, 8)), ("Eb major", Meter(5, 4)), ("F# minor", Meter(6, 8)),
         ("G mixolydian", Meter(3, 4))]
SEEDS = range(30)


def check_notes(notes, key: Key, meter: Meter, bars: int, voices: dict[int, tuple[int, int]], chromatic: bool) -> None:
    """Every invariant the request asks for, on decoded notes."""
    ticks_per_position, positions, grid = meter_grid(meter)
    bar_ticks = ticks_per_position * positions
    assert bar_ticks == round(meter.quarters_per_bar * TICKS_PER_QUARTER)
    step = ticks_per_position * grid
    pcs = allowed_pitch_classes(key, chromatic)
    assert notes, "no notes at all"
    bars_with_onsets = {n.time // bar_ticks for n in notes}
    assert max(bars_with_onsets) == bars - 1, "the last bar is not the asked one"
    for n in notes:
        assert n.time % step == 0, f"onset {n.time} off the {meter} grid (step {step})"
        assert 0 <= n.time and n.end <= bars * bar_ticks, f"note {n} outside {bars} bars"
        assert n.duration > 0
        assert n.pitch % 12 in pcs, f"pitch {n.pitch} not in {key}"
        low, high = voices[n.slot]
        assert low <= n.pitch <= high, f"pitch {n.pitch} outside voice {n.slot} range {low}-{high}"
    for bar in range(bars):  # every asked voice sounds in every bar
        for slot in voices:
            assert any(n.slot == slot and n.time < (bar + 1) * bar_ticks and n.end > bar * bar_ticks for n in notes), \
                f"voice {slot} silent in bar {bar}"
    for slot in voices:  # each voice is monophonic
        line = sorted((n for n in notes if n.slot == slot), key=lambda n: n.time)
        for a, b in zip(line, line[1:], strict=False):
            assert a.end <= b.time, f"voice {slot} overlaps itself: {a} {b}"


@pytest.mark.parametrize(("key_name", "meter"), CASES)
def test_trained_model_keeps_key_meter_bars_over_30_seeds(key_name: str, meter: Meter) -> None:
    generator = load()
    key = parse_key(key_name)
    voices = {0: VOICES[0], 3: VOICES[3]}
    for seed in SEEDS:
        request = Request("folk", key, meter, 110.0, 1, 4, voices, False, seed)
        check_notes(generator.generate(request), key, meter, 4, voices, False)


@pytest.mark.parametrize(("key_name", "meter"), CASES + [("C major", Meter(13, 16)), ("B minor", Meter(3, 2))])
def test_random_weights_still_keep_the_request(untrained_checkpoint, key_name: str, meter: Meter) -> None:
    generator = load(untrained_checkpoint)
    key = parse_key(key_name)
    for seed in range(10):
        request = Request("chorale", key, meter, None, 2, 3, VOICES, False, seed)
        check_notes(generator.generate(request), key, meter, 3, VOICES, False)


def test_chromatic_styles_may_leave_the_scale_and_others_never(untrained_checkpoint) -> None:
    generator = load(untrained_checkpoint)
    key = Key("C", "major")
    outside_seen = False
    for seed in range(10):
        notes = generator.generate(Request("celtic", key, Meter(4, 4), 120.0, 2, 4, VOICES, True, seed))
        outside_seen |= any(n.pitch % 12 not in key.scale_pcs() for n in notes)
    assert outside_seen, "random weights with chromatic allowed never left the scale in 10 seeds"


def test_long_clips_slide_the_context_and_keep_the_bar_count(untrained_checkpoint) -> None:
    generator = load(untrained_checkpoint)  # block size 64: a 12-bar clip needs many context slides
    key = Key("E", "minor")
    notes = generator.generate(Request("folk", key, Meter(4, 4), 90.0, 1, 12, VOICES, False, 3))
    check_notes(notes, key, Meter(4, 4), 12, VOICES, False)


def test_grammar_rejects_a_meter_the_vocabulary_lacks(untrained_checkpoint) -> None:
    generator = load(untrained_checkpoint)
    with pytest.raises(KeyError, match="cannot write meter 5/32"):
        Grammar(generator.vocab, Constraints(Key("C", "major"), Meter(5, 32), 2, {0: (60, 84)}))


def test_minor_allows_the_leading_tone_and_modes_are_strict() -> None:
    assert allowed_pitch_classes(Key("A", "minor"), False) == frozenset({9, 11, 0, 2, 4, 5, 7, 8})
    assert allowed_pitch_classes(Key("D", "dorian"), False) == frozenset({2, 4, 5, 7, 9, 11, 0})
    assert allowed_pitch_classes(Key("D", "dorian"), True) == frozenset(range(12))


def test_the_last_bar_closes_home_unless_asked_not_to(untrained_checkpoint) -> None:
    generator = load(untrained_checkpoint)
    key = Key("G", "minor")
    bar_ticks = 1920
    for seed in range(8):
        notes = generator.generate(Request("folk", key, Meter(4, 4), 100.0, 1, 3, VOICES, False, seed))
        last = [n for n in notes if n.time >= 2 * bar_ticks]
        assert all(n.pitch % 12 == 7 for n in last if n.slot == 3)
        assert all(n.pitch % 12 in (7, 10, 2) for n in last if n.slot == 0)
    free = [n for seed in range(8) for n in generator.generate(
        Request("folk", key, Meter(4, 4), 100.0, 1, 3, VOICES, False, seed), cadence=False)
        if n.time >= 2 * bar_ticks and n.slot == 3]
    assert any(n.pitch % 12 != 7 for n in free), "without the cadence the random model never left the tonic"


def test_the_first_bar_states_the_key_and_the_clip_ends_v_i(untrained_checkpoint) -> None:
    """With random weights (no preference of its own) the grammar alone opens on I and closes V-I."""
    generator = load(untrained_checkpoint)
    key = Key("G", "minor")  # tonic 7, third 10, fifth 2; dominant triad D F# A (2, 6, 9): minor's V is major
    beat = TICKS_PER_QUARTER
    bar_ticks = 4 * beat
    checked = 0
    for seed in range(8):
        notes = generator.generate(Request("folk", key, Meter(4, 4), 100.0, 1, 4, VOICES, False, seed))
        first_beats = [n for n in notes if n.time < bar_ticks and n.time % beat == 0]
        assert all(n.pitch % 12 in (7, 10, 2) for n in first_beats), first_beats
        checked += len(first_beats)
        assert [n.pitch % 12 for n in notes if n.time == 0 and n.slot == 3] in ([], [7]), "bass not on the tonic"
        penultimate = [n for n in notes if n.time == 2 * bar_ticks]
        assert all(n.pitch % 12 in (2, 6, 9) for n in penultimate), penultimate
        assert [n.pitch % 12 for n in penultimate if n.slot == 3] in ([], [2]), "the bass is not on the dominant"
        last_beats = [n for n in notes if n.time >= 3 * bar_ticks and n.time % beat == 0]
        assert all(n.pitch % 12 in (7, 10, 2) for n in last_beats), last_beats
    assert checked >= 3, "too few notes on the first bar's beats to check"


def test_chromatic_notes_only_pass_off_the_beat_and_briefly(untrained_checkpoint) -> None:
    generator = load(untrained_checkpoint)
    key, meter = Key("C", "major"), Meter(4, 4)
    scale = allowed_pitch_classes(key, chromatic=False)
    seen = 0
    for seed in range(10):
        for n in generator.generate(Request("celtic", key, meter, 120.0, 2, 4, VOICES, True, seed)):
            if n.pitch % 12 not in scale:
                seen += 1
                assert n.time % 480 != 0, f"chromatic {n} on a beat"
                assert n.duration <= 240, f"chromatic {n} longer than half a beat"
    assert seen > 0
