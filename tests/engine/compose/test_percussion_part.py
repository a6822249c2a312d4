"""Hand percussion beside the kit: the instrument's idiom (instruments.toml) played by the drum model,
its velocity and timing, and the drum model's fills where phrases end (real drum model checkpoint)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from engine.catalog import instruments, styles
from engine.compose import form
from engine.compose import learned as learned_parts
from engine.compose.pipeline import Grid, compose_with_provenance, percussion_pattern
from engine.understand.prompt import Overrides, understand

PROMPT = "Latin salsa montuno on piano with congas, timbales, bass and drums"


@pytest.mark.parametrize("bars", [8, 32])
def test_a_hand_drum_keeps_its_idiom_with_the_drum_models_touch_and_fills_where_phrases_end(bars: int) -> None:
    spec = replace(understand(PROMPT, Overrides(seed=0, bars=bars)), quantize=True)
    score, provenance = compose_with_provenance(spec)
    grid = Grid.of(spec.meter)
    part = next(p for p in spec.parts if p.name == "congas")
    pattern = percussion_pattern(instruments.percussion(part.instrument), grid, spec.meter)
    idiom = [(s, c) for s, c in enumerate(pattern) if c != "-"]
    congas = next(t for t in score.tracks if t.name == "congas")
    clip_form = form.plan(spec.bars, spec.key, list(styles.get(spec.style).progressions), spec.seed,
                          learned_parts.settings(spec.style).loop)
    fill = [bar.phrase_end for bar in clip_form.bars]  # the form's phrase ends: every 8th bar of 32, as the kit's
    assert sum(fill) == bars // (8 if bars >= 32 else 4)
    keys = instruments.percussion(part.instrument).keys
    for bar in range(spec.bars):
        played = sorted(((n.time % grid.bar_ticks) // grid.step_ticks, n.pitch) for n in congas.notes
                        if n.time // grid.bar_ticks == bar)
        if not fill[bar]:
            assert played == [(s, keys[int(c) - 1]) for s, c in idiom], f"bar {bar + 1} left the tumbao"
        else:
            assert played != [(s, keys[int(c) - 1]) for s, c in idiom], f"bar {bar + 1} ends a phrase: a fill"
            assert {p for _, p in played} <= set(keys)
    assert len({n.velocity for n in congas.notes}) >= 8  # the drummer's touch, not two fixed velocities
    assert provenance.rules == 0
    assert provenance.by_part["congas"]["learned"] + provenance.by_part["congas"]["style_rhythm"] == len(congas.notes)


def test_unquantized_strokes_carry_the_drum_models_micro_timing() -> None:
    spec = understand(PROMPT, Overrides(seed=0, bars=4))
    score, _ = compose_with_provenance(spec)
    grid = Grid.of(spec.meter)
    congas = next(t for t in score.tracks if t.name == "congas")
    off_grid = [n for n in congas.notes if n.time % grid.step_ticks]
    assert len(off_grid) >= len(congas.notes) // 3


def test_claves_in_a_salsa_play_the_styles_son_clave_in_step_with_the_kits_rim() -> None:
    spec = replace(understand("salsa with claves, piano and bass", Overrides(seed=1)), quantize=True)
    assert spec.style == "latin" and any(p.name == "claves" for p in spec.parts)
    score, _ = compose_with_provenance(spec)
    grid = Grid.of(spec.meter)
    clip_form = form.plan(spec.bars, spec.key, list(styles.get(spec.style).progressions), spec.seed,
                          learned_parts.settings(spec.style).loop)
    claves = next(t for t in score.tracks if t.name == "claves")
    kit = next(t for t in score.tracks if t.name == "drums")

    def steps(track, key, bar):
        return sorted((n.time % grid.bar_ticks) // grid.step_ticks for n in track.notes
                      if n.pitch == key and n.time // grid.bar_ticks == bar)

    for bar in clip_form.bars:  # fills too: a clave does not stop for the drummer's fill
        want = [0, 6, 12] if bar.position % 2 == 0 else [4, 8]  # son clave 3-2 over two bars
        assert steps(claves, 75, bar.index) == want, (bar.index, bar.position)
        assert steps(kit, 37, bar.index) == want, (bar.index, bar.position)
