"""Pitched parts are played, not just written: the performance model (engine/model/perform.py, the
committed checkpoint) gives every note its velocity and timing by default; ``quantize`` puts every
note of every part exactly on the grid."""
from __future__ import annotations

from dataclasses import replace

from engine.compose.pipeline import Grid, compose_with_provenance, part_bars, part_model_role
from engine.model.perform import OFFSETS
from engine.understand.prompt import Overrides, understand

PROMPT = "catchy pop song with piano, bass, drums and a synth lead, 8 bars"


def _clip(quantize: bool, seed: int = 0):
    spec = replace(understand(PROMPT, Overrides(seed=seed, bars=8)), quantize=quantize)
    score, _ = compose_with_provenance(spec)
    return spec, score


def test_pitched_parts_are_played_with_learned_velocities_and_timing_by_default() -> None:
    spec, score = _clip(quantize=False)
    grid = Grid.of(spec.meter)
    assert not spec.swing
    off_grid = 0
    for part in spec.parts:
        if part_model_role(spec, part) is None:
            continue
        track = next(t for t in score.tracks if t.name == part.name)
        # the part model alone gives a part 2-3 velocity bands; played, a part has many velocities
        assert len({n.velocity for n in track.notes}) >= 6, part.name
        offsets = [(n.time % grid.step_ticks) for n in track.notes]
        offsets = [o if o < grid.step_ticks / 2 else o - grid.step_ticks for o in offsets]
        assert max(abs(o) for o in offsets) <= round(max(OFFSETS) * grid.step_ticks), part.name
        off_grid += sum(o != 0 for o in offsets)
        chords: dict[int, set[int]] = {}
        for n in track.notes:  # a chord is played together: its notes share one onset time
            chords.setdefault(round(n.time / grid.step_ticks), set()).add(n.time)
        assert all(len(times) == 1 for times in chords.values()), part.name
    assert off_grid > 0  # POP909's players are mostly on the grid, not always


def test_quantize_puts_every_note_of_every_part_on_the_grid_and_keeps_the_velocities() -> None:
    spec, played = _clip(quantize=False)
    _, exact = _clip(quantize=True)
    grid = Grid.of(spec.meter)
    for track in exact.tracks:
        assert all(n.time % grid.step_ticks == 0 for n in track.notes), track.name
    for a, b in zip(played.tracks, exact.tracks, strict=True):
        if a.is_drum:
            continue
        assert [(n.pitch, n.velocity) for n in a.notes] == [(n.pitch, n.velocity) for n in b.notes], a.name


def test_a_played_part_reads_back_on_the_steps_it_was_written_on() -> None:
    spec, played = _clip(quantize=False)
    _, exact = _clip(quantize=True)
    for a, b in zip(played.tracks, exact.tracks, strict=True):
        if a.is_drum:
            continue
        read = part_bars(a.notes, spec, spec.bars)
        written = part_bars(b.notes, spec, spec.bars)
        assert [[(n.step, n.pitch) for n in bar] for bar in read] == [[(n.step, n.pitch) for n in bar]
                                                                       for bar in written], a.name

