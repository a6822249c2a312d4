"""Co-creation on a band take writes with the part model, as generate does: vary, infill, continue
and accompany rewrite a melody, bass or comping part with the model that wrote it (real model,
real checkpoint), and leave everything else note for note."""
from __future__ import annotations

from functools import lru_cache

import pytest
from symusic import Score

from engine.compose import operations as ops
from engine.compose.pipeline import compose, part_model_role
from engine.model import parts as partmodel
from engine.understand.prompt import Overrides, understand

BAR = 1920  # ticks of a 4/4 bar at 480 per quarter


@lru_cache(maxsize=1)
def _take():
    spec = understand("catchy pop song with flute melody, bass, piano and drums", Overrides(seed=4, bars=8))
    return spec, compose(spec)


def take():
    spec, score = _take()
    return spec, score.copy(deep=True)


def notes(score: Score, name: str, bars: range | None = None) -> list[tuple[int, int, int]]:
    track = next(t for t in score.tracks if t.name == name)
    return sorted((n.time, n.duration, n.pitch) for n in track.notes
                  if bars is None or n.time // BAR in bars)


@pytest.fixture
def no_corpus_model(monkeypatch):
    """The corpus (music21) model must not be asked: the part model voices every pitched part of a pop take."""
    import engine.model.generator

    def refuse(*args, **kwargs):
        raise AssertionError("the corpus model was asked for a part the part model writes")

    monkeypatch.setattr(engine.model.generator, "load", refuse)


@pytest.fixture
def bars_written(monkeypatch) -> list[str]:
    """The roles of the bars the part model writes (a spy on the real model's writer)."""
    written: list[str] = []
    original = partmodel.PartModel.write_bar

    def spy(self, role, *args, **kwargs):
        written.append(role)
        return original(self, role, *args, **kwargs)

    monkeypatch.setattr(partmodel.PartModel, "write_bar", spy)
    return written


def test_the_band_parts_of_a_pop_take_are_the_part_models() -> None:
    spec, _ = take()
    roles = {p.name: part_model_role(spec, p) for p in spec.parts}
    assert roles == {"flute": "melody", "bass": "bass", "piano": "comp", "drums": None}


def test_a_light_variation_keeps_the_rhythm_of_the_bars_it_rewrites(no_corpus_model, bars_written) -> None:
    spec, score = take()
    out = ops.vary(spec, score, ["bass"], 0.3, seed=1)
    assert bars_written and set(bars_written) == {"bass"}
    before, after = notes(score, "bass"), notes(out, "bass")
    assert before != after
    changed = {t // BAR for t, _, _ in set(before) ^ set(after)}
    # the rhythm on the grid: a rewritten bar is played again, so its onsets may sit a few ticks off their steps
    onsets = lambda ns: sorted({round(t / (BAR // 16)) for t, _, _ in ns})  # noqa: E731
    assert onsets(before) == onsets(after), "a light variation changed the rhythm"
    assert len(changed) < spec.bars  # a share of the bars, not all
    for part in ("flute", "piano", "drums"):
        assert notes(out, part) == notes(score, part)


def test_a_strong_variation_lets_the_model_write_new_rhythms(no_corpus_model) -> None:
    spec, score = take()
    out = ops.vary(spec, score, ["flute"], 1.0, seed=2)
    before, after = notes(score, "flute"), notes(out, "flute")
    assert {t for t, _, _ in before} != {t for t, _, _ in after}


def test_infill_writes_the_region_with_the_part_model_and_picks_the_draft_that_joins(
        no_corpus_model, bars_written, monkeypatch) -> None:
    spec, score = take()
    joins: list[list[float]] = []
    original = partmodel.PartModel.join_score

    def spy(self, *args, **kwargs):
        joins.append(original(self, *args, **kwargs))
        return joins[-1]

    monkeypatch.setattr(partmodel.PartModel, "join_score", spy)
    out = ops.infill(spec, score, "flute", 3, 4, seed=5)
    assert set(bars_written) == {"melody"} and len(bars_written) == 2 * ops.INFILL_CANDIDATES
    assert len(joins) == 1 and len(joins[0]) == ops.INFILL_CANDIDATES  # the bars after the region were read
    assert notes(out, "flute", range(0, 2)) + notes(out, "flute", range(4, 8)) == \
        notes(score, "flute", range(0, 2)) + notes(score, "flute", range(4, 8))  # nothing outside bars 3-4
    inside = notes(out, "flute", range(2, 4))
    assert inside and inside != notes(score, "flute", range(2, 4))
    assert all(t + d <= 4 * BAR for t, d, _ in inside)  # cut at the region's end


def test_continuing_a_take_writes_its_band_parts_with_the_part_model(no_corpus_model, bars_written) -> None:
    spec, score = take()
    new_spec, out = ops.extend(spec, score, 8, seed=3)
    assert new_spec.bars == 16
    assert {"melody", "bass", "comp"} <= set(bars_written)
    for track in out.tracks:
        assert notes(out, track.name, range(0, 8)) == notes(score, track.name), track.name
        added = notes(out, track.name, range(8, 16))
        assert added and max(t for t, _, _ in added) >= 15 * BAR, track.name


def test_accompanying_a_melody_writes_the_bass_with_the_part_model(no_corpus_model, bars_written) -> None:
    spec, score = take()
    clip = score.copy(deep=True)
    clip.tracks = [t for t in clip.tracks if t.name == "flute"]
    jazz = understand("jazz", Overrides(seed=1))
    out_spec, out = ops.accompany(clip, jazz, ["bass"], seed=1)
    assert "bass" in bars_written
    bass = next(t for t in out.tracks if t.name != "flute")  # the style's bass (jazz: an upright bass)
    assert len(bass.notes) >= out_spec.bars
    assert next(t for t in out.tracks if t.name == "flute").notes == clip.tracks[0].notes
