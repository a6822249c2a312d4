"""Compose is exact by construction: key, meter, bars and tempo hold for every seed."""
import pytest

from engine.compose import Grid, compose
from engine.decode import allowed_pitch_classes
from engine.generator import style_settings
from engine.midi import score_to_smf, smf_to_score
from engine.theory import Meter
from engine.understand import Overrides, understand

CASES = [
    ("Funky disco groove with slap bass, guitar and drums", "E minor", "4/4"),
    ("Upbeat ragtime piano", "Bb major", "7/4"),
    ("Irish jig on fiddle and whistle", "D mixolydian", "6/8"),
    ("Minimalist marimba pattern, hypnotic", "A minor", "7/8"),
    ("Jazz swing trio with walking bass, piano and drums", "F dorian", "11/8"),
    ("Dark techno with acid bassline", "C# phrygian", "5/4"),
]


@pytest.mark.parametrize(("prompt", "key", "meter"), CASES)
@pytest.mark.parametrize("seed", range(8))
def test_every_clip_holds_key_meter_bars_and_tempo(prompt, key, meter, seed):
    spec = understand(prompt, Overrides(key=key, meter=meter, bars=5, tempo_bpm=133.0, seed=seed))
    score = smf_to_score(score_to_smf(compose(spec)))
    grid = Grid.of(spec.meter)
    # The key as decoding keeps it: the scale, plus the leading tone in minor (harmonic minor);
    # chromatic styles may add notes outside it only off the beat, at most half a beat long.
    scale = allowed_pitch_classes(spec.key, chromatic=False)
    chromatic = bool(style_settings(spec.style)["chromatic"])
    beat_ticks = 480 * 4 // spec.meter.denominator
    assert [round(t.qpm, 2) for t in score.tempos] == [133.0]
    assert [(t.numerator, t.denominator) for t in score.time_signatures] == [
        (spec.meter.numerator, spec.meter.denominator)]
    assert len(score.tracks) == len(spec.parts)
    for track, part in zip(score.tracks, spec.parts, strict=True):
        assert track.name == part.name and track.is_drum == part.is_drum
        assert len(track.notes) > 0, f"{part.name} is empty"
        for note in track.notes:
            assert 0 <= note.time and note.time + note.duration <= 5 * grid.bar_ticks
            if not track.is_drum and note.pitch % 12 not in scale:
                assert chromatic, f"{note} is outside {spec.key} in a diatonic style"
                assert note.time % beat_ticks != 0 and note.duration <= beat_ticks // 2, note
            if not track.is_drum:
                assert part.low <= note.pitch <= part.high


def test_same_seed_same_bytes_and_different_seeds_differ():
    spec = understand("disco with bass and drums", Overrides(seed=4))
    again = understand("disco with bass and drums", Overrides(seed=4))
    other = understand("disco with bass and drums", Overrides(seed=5))
    assert score_to_smf(compose(spec)) == score_to_smf(compose(again))
    assert score_to_smf(compose(spec)) != score_to_smf(compose(other))


@pytest.mark.parametrize(("meter", "groups"), [
    ((4, 4), (0, 4, 8, 12)), ((6, 8), (0, 6)), ((7, 8), (0, 4, 8)), ((5, 8), (0, 4)), ((3, 4), (0, 4, 8)),
])
def test_grid_groups_beats_the_way_the_meter_is_felt(meter, groups):
    assert Grid.of(Meter(*meter)).group_starts == groups
