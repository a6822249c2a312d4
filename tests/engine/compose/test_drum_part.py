"""Compose's drum part comes from the drum model: it varies, fills phrase ends, and holds the meter."""
import numpy as np
import pytest

from engine.compose.drums import phrase_flags, swing_ticks
from engine.compose.pipeline import Grid, compose
from engine.evaluation import drums as drum_eval
from engine.model.drums import DrumHit
from engine.music.midi import score_to_smf, smf_to_score
from engine.music.theory import Meter
from engine.understand.prompt import Overrides, understand

STEP = 120


def _drums(spec):
    score = smf_to_score(score_to_smf(compose(spec)))
    return score, [t for t in score.tracks if t.is_drum][0]


def test_humanised_drums_vary_bar_to_bar_and_sit_off_the_grid():
    spec = understand("rock band with drums, bass and guitar", Overrides(seed=3, bars=8, tempo_bpm=120.0))
    assert spec.quantize is False
    score, drums = _drums(spec)
    grid = drum_eval.grid_of_score(score, 4.0, 8)
    differ, _ = drum_eval.variation(grid)
    assert differ >= 0.5
    off_grid = [n for n in drums.notes if n.time % STEP]
    assert len(off_grid) > len(drums.notes) // 2
    assert len({n.velocity for n in drums.notes}) > 10


@pytest.mark.parametrize("how", ["override", "prompt"])
def test_quantize_puts_every_drum_hit_on_its_16th_step(how):
    prompt = "funk groove with drums and bass" + (", quantized" if how == "prompt" else "")
    spec = understand(prompt, Overrides(seed=2, bars=4, quantize=True if how == "override" else None))
    assert spec.quantize is True and spec.sources["quantize"].value == "explicit"
    _, drums = _drums(spec)
    assert drums.notes and all(n.time % STEP == 0 for n in drums.notes)


def test_same_seed_same_drums_and_another_seed_other_drums():
    def notes(seed):
        _, drums = _drums(understand("hip hop beat with drums", Overrides(seed=seed, bars=4)))
        return [(n.time, n.pitch, n.velocity) for n in drums.notes]
    assert notes(11) == notes(11)
    assert notes(11) != notes(12)


@pytest.mark.parametrize("meter", ["7/4", "5/4", "3/4", "6/8", "7/8", "11/8"])
def test_drums_keep_bar_count_and_meter_in_meters_groove_lacks(meter):
    spec = understand("jazz trio with drums", Overrides(seed=1, bars=5, meter=meter))
    score, drums = _drums(spec)
    bar_ticks = Grid.of(spec.meter).bar_ticks
    assert [(t.numerator, t.denominator) for t in score.time_signatures] == [
        (spec.meter.numerator, spec.meter.denominator)]
    assert drums.notes and all(0 <= n.time and n.time + n.duration <= 5 * bar_ticks for n in drums.notes)
    # every bar has its downbeat area played: the groove fills each bar of the meter, not a 4/4 bar of it
    played = {int((n.time + STEP // 2) // bar_ticks) for n in drums.notes}
    assert played == set(range(5))
    assert Meter(spec.meter.numerator, spec.meter.denominator) == spec.meter


def test_phrase_ends_are_fills_and_the_next_bar_starts_a_phrase():
    fill, start = phrase_flags(9)
    assert [b for b, f in enumerate(fill) if f] == [3, 7]
    assert [b for b, s in enumerate(start) if s] == [0, 4, 8]


def test_fill_bars_are_busier_than_groove_bars_over_many_clips():
    end_fills = end_bars = other_fills = other_bars = 0
    for seed in range(6):
        spec = understand("rock band with drums", Overrides(seed=seed, bars=8, tempo_bpm=110.0))
        score, _ = _drums(spec)
        e, ef, o, of = drum_eval.fills(drum_eval.grid_of_score(score, 4.0, 8))
        end_bars, end_fills, other_bars, other_fills = end_bars + e, end_fills + ef, other_bars + o, other_fills + of
    assert end_fills / end_bars > 2 * other_fills / other_bars, (end_fills, end_bars, other_fills, other_bars)


def test_quantize_flag_reaches_the_spec_through_the_cli_parser():
    from bridge.cli import _overrides, build_parser

    args = build_parser().parse_args(["generate", "funk", "--out", "x", "--quantize"])
    assert _overrides(args).quantize is True
    args = build_parser().parse_args(["generate", "funk", "--out", "x"])
    assert not _overrides(args).HasField("quantize")


def test_dynamics_arc_scales_the_learned_velocities():
    spec = understand("rock band with drums, crescendo", Overrides(seed=4, bars=8))
    _, drums = _drums(spec)
    bar_ticks = Grid.of(spec.meter).bar_ticks
    # a crescendo's kit comes in after its first quarter (compose.arc_rests): compare bars 3-4 with 7-8
    first = np.mean([n.velocity for n in drums.notes if 2 * bar_ticks <= n.time < 4 * bar_ticks])
    last = np.mean([n.velocity for n in drums.notes if n.time >= 6 * bar_ticks])
    assert last > first


def test_a_swung_spec_moves_the_off_beat_eighths_to_the_triplet_position():
    spec = understand("rock band with drums, swing feel", Overrides(seed=5, bars=4, quantize=True))
    assert spec.swing
    _, drums = _drums(spec)
    phases = {n.time % 480 for n in drums.notes}
    assert 240 not in phases and 320 in phases


def test_a_swung_sixteenth_groove_swings_its_sixteenths_without_flamming_the_off_beat():
    # hip hop's drummers mostly play 16th hats: moving only the off-beat eighth to the triplet put it a third of
    # a step before the next 16th's hat (ticks 320 and 360 of the beat); swung as 16ths, each pair is long-short
    phases = set()
    for seed in range(3):
        spec = understand("Lo-fi hip hop beat, 85 bpm, dusty electric piano chords in Bb major, laid back swing",
                          Overrides(seed=seed, quantize=True))
        assert spec.swing
        _, drums = _drums(spec)
        hats = sorted({n.time for n in drums.notes if n.pitch in (42, 46)})
        assert min(b - a for a, b in zip(hats, hats[1:], strict=False)) >= 80
        phases |= {t % 480 for t in hats}
    assert {160, 400} & phases and 360 not in phases


def test_the_drummers_swing_follows_its_time_keepers_subdivision():
    sixteenths = [DrumHit(0, s, 2, 90, 0.0) for s in range(16)] + [DrumHit(0, 0, 0, 100, 0.0)]
    eighths = [DrumHit(0, s, 2, 90, 0.0) for s in range(0, 16, 2)] + [DrumHit(0, s, 0, 100, 0.0) for s in (3, 7, 11)]
    jazz_ride = [DrumHit(0, s, 8, 90, 0.0) for s in (0, 4, 6, 8, 12, 14)] + [DrumHit(0, s, 2, 80, 0.0) for s in (4, 12)]
    assert swing_ticks(sixteenths) == {1: 40, 3: 40}
    # Groove's grid files a jazz ride's triplet skip note under the beat's fourth 16th: still a swung 8th groove
    triplet_skip = [DrumHit(0, s, 8, 90, -0.3) for s in (0, 4, 7, 8, 12, 15)]
    assert swing_ticks(eighths) == swing_ticks(jazz_ride) == swing_ticks(triplet_skip) == {2: 80}


def test_swung_eighths_make_one_stroke_of_a_voices_third_and_fourth_sixteenth_not_a_flam():
    from engine.compose.drums import merge_swung_pairs

    # a ride's skip on the "&" (moved to the triplet by the swing) and on the "a" (the model's own triplet, a third
    # of a step early): one stroke, the louder; a snare's "&" and a ride's "a" are different voices and both stay
    hits = [DrumHit(0, 6, 8, 70, 0.0), DrumHit(0, 7, 8, 90, -0.3), DrumHit(0, 14, 8, 95, 0.0),
            DrumHit(0, 15, 8, 60, -0.3), DrumHit(0, 10, 1, 50, 0.0), DrumHit(0, 11, 8, 80, -0.3)]
    assert [(h.step, h.voice) for h in merge_swung_pairs(hits)] == [(7, 8), (14, 8), (10, 1), (11, 8)]
    jazz = understand("Medium swing jazz with piano and upright bass at 130 bpm in F major", Overrides(seed=2))
    _, drums = _drums(jazz)
    ride = [n.time for n in drums.notes if n.pitch == 51]
    assert len(ride) >= 3 * 8, "the ride keeps time"
    beat = 4 * STEP
    skips = [t // beat for t in ride if 0.45 <= t % beat / beat <= 0.85]  # strokes around a beat's swung "&"
    assert len(skips) == len(set(skips)), "two ride strokes flam where one swung skip note belongs"
