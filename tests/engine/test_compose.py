"""Compose is exact by construction: key, meter, bars and tempo hold for every seed."""
import pytest

from engine.compose.pipeline import Grid, compose
from engine.model.decode import allowed_pitch_classes
from engine.model.generator import style_settings
from engine.music.midi import score_to_smf, smf_to_score
from engine.music.theory import Meter
from engine.understand.prompt import Overrides, understand

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


def test_a_pad_holds_each_note_until_its_voice_moves_on():
    """Legato for pads: rests inside a voice are filled, a silence over a bar is not, no held key is struck again."""
    from engine.compose.pipeline import held
    from engine.music.notes import GridNote

    bar = 1920
    notes = [GridNote(0, 240, 72, slot=0), GridNote(480, 240, 74, slot=0),       # a short rest: filled
             GridNote(960, 240, 76, slot=0), GridNote(960 + 240 + bar + 1, 240, 77, slot=0),  # over a bar: kept
             GridNote(0, 480, 64, slot=1), GridNote(1440, 240, 72, slot=1)]      # voice 1 reaches 72 later
    out = {(n.slot, n.time): n.duration for n in held(notes, bar, end=4400)}
    assert out[(0, 0)] == 480 and out[(0, 480)] == 480       # held to the voice's next onset
    assert out[(0, 960)] == 240                              # the gap after it is more than a bar
    assert out[(0, 960 + 240 + bar + 1)] == 4400 - (960 + 240 + bar + 1)  # the last note rings to the end
    assert out[(1, 0)] == 1440 and out[(1, 1440)] == 240     # ... unless that is more than a bar away
    # voice 0's 72 would ring into voice 1's 72 at 1440 had it been longer; it stops before it
    clash = held([GridNote(0, 240, 72, slot=0), GridNote(1900, 240, 74, slot=0), GridNote(960, 240, 72, slot=1)],
                 bar, end=bar * 2)
    assert next(n for n in clash if n.slot == 0 and n.time == 0).duration == 960


def test_an_ambient_pad_sustains_its_voices():
    spec = understand("Ambient pad soundscape, very slow and calm, drifting in D major, no drums", Overrides(seed=1))
    score = compose(spec)
    (pad,) = [t for t in score.tracks if not t.is_drum]
    covered = sum(n.duration for n in pad.notes) / (spec.bars * Grid.of(spec.meter).bar_ticks)
    assert covered > 2.5  # on average more than two and a half of its voices sound at once


def test_a_draft_heard_in_another_key_is_drawn_again(monkeypatch):
    """A lo-fi loop in F minor whose first draft is heard in another key is redrawn.

    A loop cycles its progression from wherever the style starts it, so a first draft can read as
    another key. Since the performance model holds notes for their played lengths, no first draft in
    160 seeds of this prompt missed F minor, so the first draft is made to miss here: its pitched
    notes moved up a minor third (A flat minor). The kept clip is a later draft, heard in F minor by
    compose's own key finder and by music21's (the evaluation's), and the same seed gives it again.
    """
    from engine.compose import pipeline
    from engine.compose.pipeline import heard_in_key
    from engine.evaluation.evaluate import find_key, read_midi

    spec = understand("lo-fi hip hop beat with electric piano and bass in F minor, 8 bars", Overrides(seed=0))
    draft = pipeline._draft

    def first_draft_elsewhere(drawn, should_stop, provenance=None, on_part=None):
        score = draft(drawn, should_stop, provenance, on_part)
        if drawn.seed == spec.seed:
            for track in score.tracks:
                if not track.is_drum:
                    for note in track.notes:
                        note.pitch += 3
            assert not heard_in_key(score, spec.key)
        return score

    monkeypatch.setattr(pipeline, "_draft", first_draft_elsewhere)
    kept = compose(spec)
    assert heard_in_key(kept, spec.key)
    assert find_key(read_midi(score_to_smf(kept))) == (5, "minor")
    assert score_to_smf(compose(spec)) == score_to_smf(kept)
