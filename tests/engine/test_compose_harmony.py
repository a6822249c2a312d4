"""Harmony from the style data: progressions beyond I-IV-V, sevenths per style, bass passing
tones in the key, and the decoding pulls (planned chord, repetition penalty) that carry them."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from symusic import Track

from engine.catalog import styles
from engine.compose import learned as learned_parts
from engine.compose.pipeline import Grid, _bass, _Writer, chord_tones, compose, harmonic_plan
from engine.evaluation.metrics import _entropy, empty_beat_rate
from engine.model.decode import Constraints, Grammar
from engine.model.generator import Request, load
from engine.music.analysis import diatonic_triads, roman
from engine.music.spec import Part
from engine.music.theory import Key, Meter
from engine.understand.prompt import Overrides, understand

VOICES = {0: (60, 84), 1: (53, 77), 2: (45, 69), 3: (34, 62)}


def _plans(prompt: str, key: str, bars: int, seeds: range) -> list[list[str]]:
    plans = []
    for seed in seeds:
        spec = understand(prompt, Overrides(key=key, bars=bars, seed=seed))
        plans.append([roman(chord) for chord in harmonic_plan(spec, styles.get(spec.style))])
    return plans


@pytest.mark.parametrize("prompt", ["catchy pop song", "jazz combo with walking bass", "bossa nova", "gospel choir"])
def test_a_styles_progressions_use_more_than_i_iv_v(prompt: str) -> None:
    chords = {numeral for plan in _plans(prompt, "C major", 8, range(8)) for numeral in plan}
    assert chords - {"I", "IV", "V"}, f"{prompt}: only I, IV and V over 8 seeds"
    assert chords & {"ii", "iii", "vi"}


def test_the_plan_opens_on_the_tonic_and_closes_v_i_in_every_song_style() -> None:
    for style in styles.catalogue():
        if learned_parts.settings(style).loop:
            continue  # a loop genre cycles its progression (tests/engine/test_form.py)
        for seed in range(3):
            spec = replace(understand("pop", Overrides(key="A minor", bars=6, seed=seed)), style=style)
            plan = [roman(chord) for chord in harmonic_plan(spec, styles.get(style))]
            assert len(plan) == 6
            assert plan[0] == "i" and plan[-1] == "i" and plan[-2] == "V", (style, plan)  # minor's V is major
            assert not any("°" in numeral for numeral in plan), (style, plan)  # diminished triads get a stand-in


def test_different_seeds_pick_different_progressions() -> None:
    assert len({tuple(plan) for plan in _plans("catchy pop song", "C major", 8, range(8))}) >= 2


def test_sevenths_follow_the_style() -> None:
    c_major7 = (0, 4, 7, 11)   # I with its diatonic seventh
    g7 = (7, 11, 2, 5)         # V7
    jazz, pop, rock = styles.get("jazz"), styles.get("pop"), styles.get("rock")
    assert (jazz.sevenths, pop.sevenths, rock.sevenths) == ("all", "dominant", "none")
    assert chord_tones(c_major7, jazz, thin=False, tonic_pc=0) == (0, 4, 11)  # the fifth left out
    assert chord_tones(g7, jazz, thin=True, tonic_pc=0) == (11, 5)           # guide tones over a bass
    assert chord_tones(c_major7, jazz, thin=True, tonic_pc=0) == (0, 4)      # the home chord stated plainly
    assert chord_tones(g7, pop, thin=False, tonic_pc=0) == (7, 11, 5)        # V7 only
    assert chord_tones(c_major7, pop, thin=False, tonic_pc=0) == (0, 4, 7)
    assert chord_tones(g7, rock, thin=False, tonic_pc=0) == (7, 11, 2)


def test_comping_in_a_seventh_style_plays_sevenths_and_stays_in_the_key(monkeypatch) -> None:
    spec = understand("bossa nova with nylon guitar, brushes and upright bass", Overrides(
        key="F major", bars=8, seed=2))
    comp_index = [i for i, p in enumerate(spec.parts) if p.role == "chords"][0]
    scale = set(spec.key.scale_pcs())

    def comp_pcs(sevenths: str) -> list[set[int]]:
        style = replace(styles.get(spec.style), sevenths=sevenths)
        monkeypatch.setattr(styles, "get", lambda name: style)
        track = compose(spec).tracks[comp_index]
        grid = Grid.of(spec.meter)
        bars: list[set[int]] = [set() for _ in range(spec.bars)]
        for n in track.notes:
            bars[n.time // grid.bar_ticks].add(n.pitch % 12)
        return bars

    with_sevenths, triads = comp_pcs("all"), comp_pcs("none")
    assert all(bar <= scale for bar in with_sevenths + triads)
    assert with_sevenths != triads
    assert set().union(*with_sevenths) - set().union(*triads) or any(
        a - b for a, b in zip(with_sevenths, triads, strict=True)), "no seventh heard"


@pytest.mark.parametrize("style", ["country", "reggae", "techno", "pop"])
def test_bass_passing_tones_stay_in_the_scale_and_step(style: str) -> None:
    entry = styles.get(style)
    assert "p" in entry.patterns["bass"]
    key, meter = Key("D", "major"), Meter(4, 4)
    spec = replace(understand("pop", Overrides(key="D major", bars=4, seed=0)), style=style)
    part = Part(name="bass", role="bass", instrument="Electric Bass (finger)", program=33, is_drum=False,
                low=28, high=55)
    track = Track(name="bass", program=33, is_drum=False)
    triads = diatonic_triads(key)
    chords = [triads[i].pcs for i in (0, 5, 3, 4)]  # I vi IV V
    grid = Grid.of(meter)
    _bass(_Writer(spec, grid, track), part, entry, grid, meter, chords, np.random.default_rng(0))
    scale = set(key.scale_pcs())
    notes = sorted(track.notes, key=lambda n: n.time)
    assert notes and all(n.pitch % 12 in scale for n in notes)
    pattern = entry.patterns["bass"]
    last_onset = max(i for i, c in enumerate(pattern) if c != "-")  # leads into the next bar (approach note)
    passing = [n for n in notes if pattern[step := (n.time % grid.bar_ticks) // grid.step_ticks] == "p"
               and step != last_onset]
    assert passing
    for n in passing:
        before = max((m for m in notes if m.time < n.time), key=lambda m: m.time, default=None)
        if before is not None and before.time // grid.bar_ticks == n.time // grid.bar_ticks:
            assert 1 <= abs(n.pitch - before.pitch) <= 2, (before, n)  # a scale step from the last note


def test_the_strong_beat_pull_follows_the_planned_chord() -> None:
    generator = load()
    key, meter = Key("C", "major"), Meter(4, 4)
    plan = ((0, 4, 7), (9, 0, 4), (5, 9, 0), (7, 11, 2))  # I vi IV V
    grammar = Grammar(generator.vocab, Constraints(key, meter, 4, dict(VOICES), tonic_bias=(1.0, 0.5, 0.0),
                                                   chord_plan=plan, plan_tonic_share=0.5))
    pitch_of = torch.as_tensor(generator.vocab.pitch_of)
    grammar.bars_started, grammar.phase, grammar.position, grammar.slot = 2, "program", 0, 0  # bar 2 (vi), beat 1
    bias = grammar.bias()
    by_pc = {pc: float(bias[(pitch_of % 12 == pc) & (pitch_of >= 0)][0]) for pc in range(12)}
    assert by_pc[9] == 1.0            # A: vi's root
    assert by_pc[0] == 0.5 + 0.5      # C: vi's third and the tonic's root (half the tonic pull)
    assert by_pc[7] == 0.0 and by_pc[2] == 0.0


def test_a_voice_is_pushed_off_the_pitch_classes_it_just_played(monkeypatch) -> None:
    generator = load()
    key, meter = Key("C", "major"), Meter(4, 4)
    grammar = Grammar(generator.vocab, Constraints(key, meter, 8, {0: (60, 84)}, repeat_penalty=0.5,
                                                   repeat_window=2))
    pitch_of = torch.as_tensor(generator.vocab.pitch_of)
    grammar.phase, grammar.slot, grammar.bars_started, grammar.position = "program", 0, 1, 1
    grammar._recent[0] = [4, 4]
    bias = grammar.bias()
    assert float(bias[pitch_of == 64][0]) == -1.0 and float(bias[pitch_of == 65][0]) == 0.0

    def entropy(penalty: float) -> float:
        import engine.model.generator as gen

        real = gen.decoding_extras
        monkeypatch.setattr(gen, "decoding_extras", lambda mode, fill_rests=True: {
            **real(mode, fill_rests), "repeat_penalty": penalty})
        counts = np.zeros(12)
        for seed in range(6):
            notes = generator.generate(Request("folk", key, meter, 100.0, 1, 8, {0: (60, 84)}, False, seed))
            counts += np.bincount([n.pitch % 12 for n in notes], minlength=12)
        monkeypatch.undo()
        return _entropy(counts / counts.sum())

    assert entropy(0.5) > entropy(0.0), "the penalty did not spread the line over more of the scale"


@pytest.mark.parametrize("seed", range(3))
def test_a_clip_the_model_plays_alone_never_stops_for_a_beat(seed: int) -> None:
    """Odd meter, sparse style, keys only: the case where the model left holes."""
    spec = understand("Minimalist marimba pattern in 7/8, A minor, hypnotic", Overrides(bars=12, seed=seed))
    assert all(p.role == "keys" for p in spec.parts)
    assert empty_beat_rate(compose(spec)) == 0.0


def test_model_voices_under_a_band_may_rest() -> None:
    generator = load()
    key, meter = Key("C", "major"), Meter(4, 4)
    alone = Request("folk", key, meter, 100.0, 0, 4, {0: (60, 84)}, False, 0)
    grammar = Grammar(generator.vocab, Constraints(key, meter, 4, {0: (60, 84)}, max_rest_quarters=1.0))
    assert grammar._rest_ends() == 480
    assert Grammar(generator.vocab, Constraints(key, meter, 4, {0: (60, 84)}))._rest_ends() is None
    import engine.model.generator as gen

    assert gen.decoding_extras("major", fill_rests=False)["max_rest_quarters"] == 0.0
    assert gen.decoding_extras("major")["max_rest_quarters"] > 0
    notes = generator.generate(alone)
    ends = sorted(notes, key=lambda n: n.time)
    for a, b in zip(ends, ends[1:], strict=False):
        assert b.time - max(n.end for n in ends if n.time <= a.time) <= 480, (a, b)
