"""Ragtime's stride left hand: a low bass note on the strong beats, the bar's chord above it on the
off-beats, in 4/4 and in odd meters, read from the style data (engine/catalog/data/styles.toml)."""
from collections import defaultdict

import pytest

from engine.catalog import styles
from engine.compose import form
from engine.compose.pipeline import Grid, arrange_part, compose, harmonic_plan
from engine.music.analysis import diatonic_triads, seventh_pc
from engine.understand.prompt import Overrides, understand

PROMPTS = ["Upbeat ragtime piano in 7/4", "Upbeat ragtime piano in Bb major, 8 bars"]


def _bars(track, grid: Grid, bars: int) -> list[dict[int, list[int]]]:
    """Per bar: onset step -> the pitches struck there."""
    out: list[dict[int, list[int]]] = [defaultdict(list) for _ in range(bars)]
    for note in track.notes:
        bar, offset = divmod(note.time, grid.bar_ticks)
        out[bar][offset // grid.step_ticks].append(note.pitch)
    return out


def _assert_stride(bar_onsets: dict[int, list[int]], grid: Grid, bar: int) -> tuple[int, set[int]]:
    """Single low notes and chords alternate on the beat groups, every bass note below every chord
    note; returns the downbeat's bass pitch and the bar's pitch classes."""
    assert set(bar_onsets) <= set(grid.group_starts), f"bar {bar}: off the beat grid"
    basses = [p for pitches in bar_onsets.values() if len(pitches) == 1 for p in pitches]
    chords = [p for pitches in bar_onsets.values() if len(pitches) >= 2 for p in pitches]
    assert basses and chords, f"bar {bar}: bass notes {basses}, chord notes {chords}"
    assert len(bar_onsets[0]) == 1, f"bar {bar}: the downbeat is not a single bass note"
    assert max(basses) < min(chords), f"bar {bar}: bass {basses} not below chords {chords}"
    strong = sorted(s for s, pitches in bar_onsets.items() if len(pitches) == 1)
    weak = sorted(s for s, pitches in bar_onsets.items() if len(pitches) >= 2)
    assert weak[0] > strong[0], f"bar {bar}: the chord comes before the bass"
    return bar_onsets[0][0], {p % 12 for pitches in bar_onsets.values() for p in pitches}


def _phrase_ends(bars: int) -> set[int]:
    """The bars that end a phrase with another bar after them (engine/compose/form.py)."""
    length = form.phrase_length(bars)
    return {bar for bar in range(length - 1, bars - 1, length)}


def _assert_run(bar_onsets: dict[int, list[int]], next_bar: dict[int, list[int]], grid: Grid, bar: int) -> int:
    """A phrase-end bar: an octave on every beat group, no chord, moving by step (or holding) into the
    next bar's downbeat; returns the run's first note."""
    assert sorted(bar_onsets) == list(grid.group_starts), f"bar {bar}: the run misses a beat group"
    notes = [sorted(bar_onsets[s]) for s in grid.group_starts]
    assert all(len(n) == 2 and n[1] - n[0] == 12 for n in notes), f"bar {bar}: not octaves: {notes}"
    line = [n[0] for n in notes] + [next_bar[0][0]]
    steps = [abs(b - a) % 12 for a, b in zip(line, line[1:], strict=False)]
    walk = steps[-min(3, len(steps) - 1):]  # at least its last moves walk, by step, into the next downbeat
    assert all(step <= 2 for step in walk) and walk[-1] > 0, f"bar {bar}: {line} does not walk into the next bar"
    return notes[0][0]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_the_stride_breaks_into_a_run_where_each_phrase_ends(prompt):
    spec = understand(prompt, Overrides(seed=1, bars=16))
    score = compose(spec)
    grid = Grid.of(spec.meter)
    left = score.tracks[1]
    bars = _bars(left, grid, spec.bars)
    assert _phrase_ends(spec.bars) == {3, 7, 11}
    for bar in range(spec.bars):
        if bar in _phrase_ends(spec.bars):
            _assert_run(bars[bar], bars[bar + 1], grid, bar)
        else:
            _assert_stride(bars[bar], grid, bar)
    velocities = [n.velocity for n in left.notes if n.time % grid.bar_ticks == 0 and n.time < 3 * grid.bar_ticks]
    chords = [n.velocity for n in left.notes if n.time % grid.bar_ticks and n.time < 3 * grid.bar_ticks]
    assert min(velocities) > max(chords)  # the downbeat's bass leans in over the off-beat chords


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("seed", range(3))
def test_a_ragtime_clip_has_a_stride_left_hand_under_the_melody(prompt, seed):
    spec = understand(prompt, Overrides(seed=seed))
    assert [(p.name, p.role, p.program) for p in spec.parts] == [("piano", "melody", 0), ("piano_lh", "bass", 0)]
    score = compose(spec)
    grid = Grid.of(spec.meter)
    melody, left = score.tracks
    key_chords = diatonic_triads(spec.key)
    roots = []
    bars = _bars(left, grid, spec.bars)
    for bar, onsets in enumerate(bars):
        if bar in _phrase_ends(spec.bars):
            roots.append(_assert_run(onsets, bars[bar + 1], grid, bar) % 12)
            continue
        bass, pcs = _assert_stride(onsets, grid, bar)
        # The bar's chord: a diatonic triad (with its seventh) rooted on the downbeat's bass note
        # holds every tone the left hand plays in the bar.
        fits = [c for c in key_chords if c.root_pc == bass % 12
                and pcs <= set(c.pcs) | {seventh_pc(c, spec.key)}]
        assert fits, f"bar {bar}: {sorted(pcs)} is not the chord on {bass}"
        roots.append(bass % 12)
    # The frame of the harmonic plan: I first, V-I last.
    assert roots[0] == roots[-1] == spec.key.tonic_pc
    assert roots[-2] == spec.key.scale_pcs()[4]
    # The melody (the model's) sits above the left hand's chords.
    left_top = max(n.pitch for n in left.notes)
    melody_pitches = sorted(n.pitch for n in melody.notes)
    assert melody_pitches[len(melody_pitches) // 2] > left_top


@pytest.mark.parametrize("meter", ["4/4", "7/4", "3/4", "5/4", "6/8"])
def test_the_stride_plays_the_planned_chord_of_every_bar_in_any_meter(meter):
    spec = understand("ragtime", Overrides(key="F major", meter=meter, bars=8, seed=2))
    style = styles.get(spec.style)
    plan = harmonic_plan(spec, style)
    chords = [c.pcs + (seventh_pc(c, spec.key),) for c in plan]
    left = next(p for p in spec.parts if p.role == "bass")
    track = arrange_part(spec, left, chords, seed=2)
    grid = Grid.of(spec.meter)
    for bar, onsets in enumerate(_bars(track, grid, spec.bars)):
        bass, pcs = _assert_stride(onsets, grid, bar)
        assert bass % 12 == plan[bar].root_pc, f"bar {bar}: downbeat {bass} is not the root of {plan[bar]}"
        assert pcs <= set(chords[bar]), f"bar {bar}: {sorted(pcs)} outside the planned {chords[bar]}"
        # Every group start is struck: bass and chord alternate across the meter's beat groups.
        assert set(onsets) == set(grid.group_starts)


def test_the_styles_syncopation_moves_the_melodys_onsets_off_the_beat():
    """model.toml's ragtime syncopation: the same requests with and without it, the real model."""
    from dataclasses import replace

    from engine.compose.pipeline import model_request, plan_voices
    from engine.model.generator import load, style_settings

    assert style_settings("ragtime")["syncopation"] > 0
    generator = load()

    def feel(syncopation: float) -> tuple[float, float]:
        """(share of onsets off the beat, share of notes tied over a beat) over four seeds."""
        notes = []
        for seed in range(4):
            spec = understand("Upbeat ragtime piano in Bb major, 8 bars", Overrides(seed=seed))
            request = model_request(spec, plan_voices(spec.parts), harmonic_plan(spec, styles.get(spec.style)))
            # at the style's own density: the prompt's energy ("upbeat") would ask for busier lines
            notes += generator.generate(replace(request, syncopation=syncopation,
                                                density=style_settings("ragtime")["density"]))
        off = [n for n in notes if n.time % 480]
        tied = [n for n in off if n.time % 480 + n.duration > 480]
        return len(off) / len(notes), len(tied) / len(notes)

    (plain_off, plain_tied), (rag_off, rag_tied) = feel(0.0), feel(style_settings("ragtime")["syncopation"])
    assert rag_off > plain_off + 0.03, (plain_off, rag_off)
    assert rag_tied > plain_tied + 0.03, (plain_tied, rag_tied)  # syncopation proper: notes held over the beat
