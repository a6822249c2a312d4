"""Infill's join score: the model reading the bars after the region, given what comes before and a draft."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from symusic import Note

from engine.compose import operations as ops
from engine.compose.pipeline import compose
from engine.understand.prompt import understand


def _take():
    # a folk tune: its melody is the corpus model's own (pop melodies now come from the POP909 part model),
    # and the join is scored by the corpus model
    spec = replace(understand("a folk tune with flute melody, bass and drums"), bars=8, seed=11)
    score = compose(spec)
    track = next(t for t in score.tracks if t.name == "flute")
    return spec, score, list(track.notes)


def test_the_music_that_was_there_joins_better_than_noise():
    spec, score, notes = _take()
    ticks = ops.bar_ticks(spec)
    start, end = 2 * ticks, 4 * ticks  # bars 3-4
    before = [n for n in notes if n.time < start]
    inside = [n for n in notes if start <= n.time < end]
    after = [n for n in notes if n.time >= end]
    rng = np.random.default_rng(0)
    eighth = 240
    noise = [Note(start + k * eighth + 40, 100, int(rng.integers(40, 100)), 80) for k in range((end - start) // eighth)]
    there = ops.join_logprobs(spec, before, [inside], after, 3, 4)[0]
    worse = ops.join_logprobs(spec, before, [noise], after, 3, 4)[0]
    assert there is not None and worse is not None
    print(f"join score: the bars that were there {there:.3f}, noise {worse:.3f}")
    assert there > worse + 0.1, (there, worse)


def test_no_join_score_when_nothing_follows_the_region():
    spec, score, notes = _take()
    ticks = ops.bar_ticks(spec)
    before = [n for n in notes if n.time < 6 * ticks]
    inside = [n for n in notes if n.time >= 6 * ticks]
    assert ops.join_logprobs(spec, before, [inside], [], 7, 8)[0] is None


def test_infill_keeps_the_best_joining_draft_and_nothing_outside_changes():
    spec, score, notes = _take()
    out = ops.infill(spec, score, "flute", 3, 4, seed=5)
    ticks = ops.bar_ticks(spec)
    new = next(t for t in out.tracks if t.name == "flute").notes
    key = lambda ns: sorted((n.time, n.duration, n.pitch) for n in ns if not 2 * ticks <= n.time < 4 * ticks)  # noqa: E731
    assert key(new) == key(notes)
    assert sorted((n.time, n.pitch) for n in new) != sorted((n.time, n.pitch) for n in notes)


def test_batched_log_probabilities_match_one_sequence_at_a_time():
    from engine.model.generator import load

    generator = load()
    rng = np.random.default_rng(3)
    long = [int(t) for t in rng.integers(1, generator.vocab.size, 60)]
    short = long[:25]
    batched = generator.token_logprobs_batch([long, short])
    assert len(batched[0]) == 59 and len(batched[1]) == 24
    np.testing.assert_allclose(batched[0], generator.token_logprobs(long), atol=1e-4)
    np.testing.assert_allclose(batched[1], generator.token_logprobs(short), atol=1e-4)  # padding unseen
