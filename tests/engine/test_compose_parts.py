"""Band parts from the learned part model, in a form: who writes the notes, motifs that return,
parts that change from bar to bar, and no corpus-model voices that nothing plays."""
from __future__ import annotations

import pytest

from engine.catalog import styles
from engine.compose import form
from engine.compose import learned as learned_parts
from engine.compose.pipeline import Grid, compose_with_provenance
from engine.evaluation import parts_form
from engine.understand.prompt import Overrides, understand

BAND_PROMPTS = [
    "catchy pop song with piano, bass, drums and a synth lead, 8 bars",
    "Funky disco groove at 118 BPM in E minor with slap bass, rhythm guitar and drums, 8 bars",
    "lo-fi hip hop beat with electric piano and bass, 8 bars",
    "country song with pedal steel, acoustic guitar, bass and drums",
]


def onsets_per_bar(track, grid: Grid, bars: int) -> list[tuple[int, ...]]:
    out: list[set[int]] = [set() for _ in range(bars)]
    for n in track.notes:
        out[n.time // grid.bar_ticks].add((n.time % grid.bar_ticks) // grid.step_ticks)
    return [tuple(sorted(s)) for s in out]


@pytest.mark.parametrize("prompt", BAND_PROMPTS)
def test_every_pitched_note_of_a_band_prompt_is_chosen_by_a_learned_model(prompt: str, monkeypatch) -> None:
    import engine.model.generator

    def no_corpus_model(*args, **kwargs):
        raise AssertionError("the corpus model was asked for voices in a band prompt")

    monkeypatch.setattr(engine.model.generator, "load", no_corpus_model)
    spec = understand(prompt, Overrides(seed=1))
    score, provenance = compose_with_provenance(spec)
    assert provenance.pitched_share() >= 0.9
    assert provenance.rules == 0
    counted = {name: sum(kinds.values()) for name, kinds in provenance.by_part.items()}
    assert counted == {t.name: len(t.notes) for t in score.tracks}


def test_the_melodys_motif_returns_inside_the_phrase_and_when_the_section_returns() -> None:
    spec = understand("catchy pop song with piano, bass, drums and a synth lead, 8 bars", Overrides(seed=3))
    score, _ = compose_with_provenance(spec)
    melody = next(t for t, p in zip(score.tracks, spec.parts, strict=True) if p.role == "melody")
    rhythms = onsets_per_bar(melody, Grid.of(spec.meter), spec.bars)
    assert rhythms[2] == rhythms[0]              # the motif's rhythm, new pitches, inside the phrase
    assert rhythms[4] == rhythms[0]              # A returns with its motif
    assert len(set(rhythms)) >= 3                # but the clip is not one bar over and over


@pytest.mark.parametrize("prompt", BAND_PROMPTS)
def test_learned_bass_and_comping_change_from_bar_to_bar(prompt: str) -> None:
    spec = understand(prompt, Overrides(seed=2))
    score, _ = compose_with_provenance(spec)
    figures = parts_form.clip_figures(score, spec)
    for name, row in figures.items():
        assert row["variation"] >= 0.5, (name, row)


def test_a_loop_genre_leads_its_last_bar_back_into_the_first() -> None:
    spec = understand("lo-fi hip hop beat with electric piano and bass, 8 bars", Overrides(seed=0))
    assert learned_parts.settings(spec.style).loop
    clip_form = form.plan(spec.bars, spec.key, list(styles.get(spec.style).progressions), spec.seed, loop=True)
    score, _ = compose_with_provenance(spec)
    grid = Grid.of(spec.meter)
    turnarounds = 0
    for track in [t for t in score.tracks if not t.is_drum]:  # drums are the drum path's (fills may differ)
        # the notes on the grid (nearest step): a returning bar is played again, a few ticks off its steps
        bars = [sorted((round((n.time % grid.bar_ticks) / grid.step_ticks), n.pitch) for n in track.notes
                       if n.time // grid.bar_ticks == b) for b in range(spec.bars)]
        assert [bars[4], bars[6]] == [bars[0], bars[2]], track.name  # the second time round is the loop again,
        turnarounds += bars[7] != bars[3]  # its answering bars played afresh, the last a turnaround into bar 1
    assert turnarounds >= 1
    assert [b.chord for b in clip_form.bars[4:]] == [b.chord for b in clip_form.bars[:4]]


def test_part_settings_name_the_accepted_values(monkeypatch) -> None:
    monkeypatch.setattr(learned_parts, "_table", lambda: {"default": {"bass_rhythm": "learned"},
                                                          "style": {"pop": {"bass_rhythm": "sometimes"}}})
    with pytest.raises(ValueError, match="bass_rhythm = 'sometimes'; accepted: learned, style"):
        learned_parts.settings("pop")
    monkeypatch.setattr(learned_parts, "_table", lambda: {"default": {}, "style": {"pop": {"groove": 1}}})
    with pytest.raises(ValueError, match="unknown setting 'groove'"):
        learned_parts.settings("pop")


def test_a_bar_longer_than_the_model_writes_is_cut_at_beat_groups() -> None:
    assert learned_parts.chunks(16, (0, 4, 8, 12)) == [(0, 16)]
    assert learned_parts.chunks(28, (0, 4, 8, 12, 16, 20, 24)) == [(0, 16), (16, 12)] or \
        learned_parts.chunks(28, (0, 4, 8, 12, 16, 20, 24)) == [(0, 12), (12, 16)]
    assert learned_parts.chunks(20, (0, 4, 8, 12, 16)) in ([(0, 8), (8, 12)], [(0, 12), (12, 8)])


@pytest.mark.parametrize("seed", range(3))
def test_a_driving_bass_keeps_its_idiom_through_the_first_half_of_a_phrase_end(seed: int) -> None:
    spec = understand("80s synth pop with a driving bassline and bright arpeggiated synths", Overrides(seed=seed))
    assert learned_parts.settings(spec.style).bass_rhythm == "style"  # an idiom the model fills in
    score, _ = compose_with_provenance(spec)
    bass = next(t for t, p in zip(score.tracks, spec.parts, strict=True) if p.role == "bass")
    grid = Grid.of(spec.meter)
    rhythms = onsets_per_bar(bass, grid, spec.bars)
    half = grid.steps // 2
    first_half = [tuple(s for s in r if s < half) for r in rhythms]
    for end in (3, 7):  # the phrase ends of an 8-bar clip: the groove goes on, the fill is the second half
        assert first_half[end] == first_half[0], (end, rhythms[end], rhythms[0])
        assert len(rhythms[end]) >= len(first_half[0]) + 1


def test_a_reggae_skank_chops_its_chords_on_the_off_beats() -> None:
    spec = understand("Reggae one drop groove with skanking organ and deep bass, 76 BPM, G major", Overrides(seed=1))
    score, _ = compose_with_provenance(spec)
    organ = next(t for t, p in zip(score.tracks, spec.parts, strict=True) if p.name == "organ")
    grid = Grid.of(spec.meter)
    rhythms = onsets_per_bar(organ, grid, spec.bars)
    idiom_bars = [b for b, r in enumerate(rhythms) if r == (4, 12)]
    assert len(idiom_bars) >= spec.bars // 2  # the skank's off-beats (2 and 4) in most bars
    chops = [n for n in organ.notes if n.time // grid.bar_ticks in idiom_bars]
    assert max(n.duration for n in chops) <= 1.5 * grid.step_ticks  # chopped, not held to the next off-beat


def test_ska_plays_upstrokes_on_the_offbeats_over_a_backbeat() -> None:
    """Ska's guitar chops every 'and' and its drummer keeps the snare on 2 and 4 (not reggae's one drop)."""
    from collections import Counter

    from engine.compose.pipeline import compose
    from engine.understand.prompt import Overrides, understand

    score = compose(understand("bouncy ska with upstroke guitar and horns, 8 bars", Overrides(seed=1)))
    bar = score.tpq * 4

    def step(note) -> int:  # the nearest 16th of the bar (the drummer plays a little early or late)
        return int(((note.time % bar) + score.tpq / 8) * 4 // score.tpq) % 16

    guitar = next(t for t in score.tracks if t.name == "guitar")
    offbeats = sum(step(n) in (2, 6, 10, 14) for n in guitar.notes) / len(guitar.notes)
    assert offbeats >= 0.8, offbeats  # the rest: a phrase end's push or pickup
    drums = next(t for t in score.tracks if t.is_drum)
    snares = Counter(step(n) for n in drums.notes if n.pitch in (38, 40))
    assert snares[4] >= 6 and snares[12] >= 6, snares  # on 2 and 4 in every bar but the fills
