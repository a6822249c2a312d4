"""The drum model: meters cut into 4/4-shaped segments, seeded sampling, fills where asked."""
import numpy as np
import pytest

from engine.model.drums import POSITIONS, load_default, positions, segments, step_features
from engine.training.groove import TOMS


@pytest.mark.parametrize(("steps", "cut"), [
    (16, [16]), (12, [12]), (14, [14]), (8, [8]), (20, [12, 8]), (28, [16, 12]), (24, [12, 12]), (22, [12, 10]),
    (64, [16, 16, 16, 16]),
])
def test_a_bar_is_cut_into_segments_no_longer_than_a_4_4_bar(steps, cut):
    assert segments(steps) == cut and sum(cut) == steps


def test_a_short_segment_keeps_its_downbeat_and_ends_where_a_4_4_bar_ends():
    pos, seg_start, last = positions(12)  # 3/4
    assert pos.tolist() == [0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15]
    pos, seg_start, last = positions(28)  # 7/4 = 4 + 3 beats
    assert pos[:16].tolist() == list(range(16)) and pos[16:20].tolist() == [0, 1, 2, 3]
    assert seg_start.nonzero()[0].tolist() == [0, 16] and last.tolist() == [False] * 16 + [True] * 12


def test_fill_flag_marks_only_the_bars_last_segment_and_phrase_start_only_its_first():
    f = step_features([28, 28], np.array([False, True]), np.array([True, False]))
    assert f.shape == (56, POSITIONS + 2)
    assert f[:28, POSITIONS].sum() == 0 and f[28:44, POSITIONS].sum() == 0 and f[44:, POSITIONS].all()
    assert f[:16, POSITIONS + 1].all() and f[16:, POSITIONS + 1].sum() == 0


def test_same_seed_same_hits_other_seed_other_hits():
    model = load_default()
    args = ([16] * 4, "rock", 120.0, [False, False, False, True], [True, False, False, False])
    a, b, c = (model.generate(*args, seed=s) for s in (5, 5, 6))
    assert [vars(h) for h in a] == [vars(h) for h in b]
    assert [vars(h) for h in a] != [vars(h) for h in c]


def test_every_hit_lies_inside_its_bar_for_any_meter():
    model = load_default()
    for bar_steps in ([16] * 3, [28] * 3, [20] * 3, [12] * 3, [14] * 3):
        hits = model.generate(bar_steps, "funk", 100.0, [False, False, True], [True, False, False], seed=1)
        assert hits and all(0 <= h.step < bar_steps[h.bar] and 0 <= h.bar < 3 for h in hits)
        assert all(1 <= h.velocity <= 127 and -0.5 <= h.offset < 0.5 for h in hits)


def test_bars_flagged_as_fills_play_more_toms_than_groove_bars():
    model = load_default()
    fill_toms = groove_toms = 0
    for seed in range(6):
        flags = [False, False, False, True] * 2
        hits = model.generate([16] * 8, "rock", 110.0, flags, [b % 4 == 0 for b in range(8)], seed=seed)
        for h in hits:
            if h.voice in TOMS:
                if flags[h.bar]:
                    fill_toms += 1
                else:
                    groove_toms += 1
    # 12 fill bars against 36 groove bars: per bar, a fill plays at least twice the toms of a groove bar
    assert fill_toms / 12 >= 2 * groove_toms / 36, (fill_toms, groove_toms)


def test_genres_the_model_knows_include_the_styles_drum_genres():
    from engine.catalog.styles import catalogue

    known = set(load_default().config.genres)
    wanted = {s.drum_genre for s in catalogue().values() if s.drum_genre}
    assert wanted <= known, wanted - known


def test_the_model_hears_a_tempo_its_genres_drummers_played():
    model = load_default()
    lo, hi = model.record["genre_tempo"]["latin"]
    assert model.heard_tempo("latin", 400.0) == hi and model.heard_tempo("latin", 20.0) == lo
    assert model.heard_tempo("latin", (lo + hi) / 2) == (lo + hi) / 2
    assert model.heard_tempo("no such genre", 133.0) == 133.0


def test_numpy_stepping_computes_what_the_torch_model_computes():
    import torch

    from engine.model.drums import _Stepper

    model = load_default()
    feats = step_features([16, 16], np.array([False, True]), np.array([True, False]))
    events = np.random.default_rng(0).random((32, 27)).astype(np.float32)
    with torch.no_grad():
        expected, _ = model.model(torch.from_numpy(events)[None], torch.from_numpy(feats)[None],
                                  torch.tensor([97.0]), torch.tensor([3]))
    stepper = _Stepper(model.model)
    cond, state = stepper.condition(feats, 97.0, 3), stepper.initial_state()
    got = np.stack([stepper.step(events[i], cond[i], state) for i in range(32)])
    assert np.abs(expected[0].numpy() - got).max() < 1e-4


def test_stepping_two_conditionings_together_computes_what_each_computes_alone():
    from engine.model.drums import _Stepper

    model = load_default()
    feats = step_features([16], np.array([False]), np.array([True]))
    events = np.random.default_rng(1).random((16, 27)).astype(np.float32)
    stepper = _Stepper(model.model)
    genres = (3, len(model.config.genres))  # a genre and 'no genre', as guidance steps them
    alone = []
    for genre in genres:
        cond, state = stepper.condition(feats, 120.0, genre), stepper.initial_state()
        alone.append(np.stack([stepper.step(events[i], cond[i], state) for i in range(16)]))
    conds = np.stack([stepper.condition(feats, 120.0, genre) for genre in genres], axis=1)
    state = stepper.initial_state(2)
    together = np.stack([stepper.step(events[i], conds[i], state) for i in range(16)])
    assert together.shape == (16, 2, 9, model.config.per_voice)
    assert np.abs(together - np.stack(alone, axis=1)).max() < 1e-5


def test_concurrent_requests_get_the_drums_they_would_get_alone():
    from concurrent.futures import ThreadPoolExecutor

    model = load_default()
    args = [([16] * 8, genre, 110.0, [False, False, False, True] * 2, [True, False, False, False] * 2)
            for genre in ("rock", "funk", "jazz", "latin")]
    alone = [[vars(h) for h in model.generate(*a, seed=9)] for a in args]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda a: [vars(h) for h in model.generate(*a, seed=9)], args))
    assert together == alone


def test_the_catalogues_kit_voices_are_the_models_voices_in_its_order():
    from engine.catalog.styles import KIT_VOICES
    from engine.model.drums import VOICE_NAMES

    assert KIT_VOICES == VOICE_NAMES


def test_rules_make_the_model_play_or_leave_a_voice_in_groove_bars_but_not_in_fills():
    from engine.model.drums import ALWAYS, FREE, NEVER

    rules = np.full((POSITIONS, 9), FREE, np.int8)
    rules[:, 0] = NEVER
    rules[8, 0] = ALWAYS  # kick only on beat 3
    fill = [False, False, False, True]
    hits = load_default().generate([16] * 4, "rock", 120.0, fill, [True, False, False, False], seed=3, rules=rules)
    kicks = {(h.bar, h.step) for h in hits if h.voice == 0}
    assert {(b, s) for b, s in kicks if not fill[b]} == {(0, 8), (1, 8), (2, 8)}
    free = load_default().generate([16] * 4, "rock", 120.0, fill, [True, False, False, False], seed=3)
    assert {(b, s) for b, s in ((h.bar, h.step) for h in free if h.voice == 0) if not fill[b]} != {(0, 8), (1, 8),
                                                                                                  (2, 8)}


def test_a_crash_bar_opens_with_a_crash_and_a_kick_unless_the_rules_forbid_the_kick():
    from engine.model.drums import CRASH, NEVER

    model = load_default()
    args = ([16] * 2, "funk", 100.0, [False, False], [True, False])
    hits = model.generate(*args, seed=0, crash=[False, True], accent_velocity=110)
    downbeat = {h.voice: h.velocity for h in hits if (h.bar, h.step) == (1, 0)}
    assert downbeat[CRASH] >= 110 and downbeat[0] >= 110
    rules = np.full((POSITIONS, 9), -1, np.int8)
    rules[0, 0] = NEVER
    hits = model.generate(*args, seed=0, crash=[True, True], rules=rules)
    downbeats = {(h.bar, h.voice) for h in hits if h.step == 0}
    assert (0, CRASH) in downbeats and (1, CRASH) in downbeats and (0, 0) not in downbeats and (1, 0) not in downbeats


def test_a_positive_density_plays_more_hits_and_a_negative_one_fewer():
    model = load_default()
    args = ([16] * 8, "rock", 120.0, [False] * 8, [b % 4 == 0 for b in range(8)])
    count = {d: sum(len(model.generate(*args, seed=s, density=[d] * 8)) for s in range(3)) for d in (-1.0, 0.0, 1.0)}
    assert count[-1.0] < count[0.0] < count[1.0], count


def test_genre_guidance_makes_the_requested_genre_heard_in_more_bars_than_the_primed_groove_alone():
    # at guidance 1 the GRU mostly continues the real groove it is primed with; compose's guidance pushes the
    # hit logits from the 'no genre' prediction toward the genre's. Judged by the eval's genre classifier
    # (trained on Groove bars the drum model never saw), over the same seeds and so the same primers
    from engine.compose.drums import STEP_TICKS
    from engine.config import DRUM_GENRE_GUIDANCE, DRUM_TEMPERATURE
    from engine.evaluation import drums as drum_eval

    model = load_default()
    _, classifier = drum_eval.reference()
    fill, start = [b % 4 == 3 for b in range(8)], [b % 4 == 0 for b in range(8)]

    def heard(guidance: float) -> float:
        right = total = 0
        for genre, tempo in (("funk", 104.0), ("latin", 170.0), ("jazz", 160.0)):
            for seed in range(8):
                hits = model.generate([16] * 8, genre, tempo, fill, start, seed=seed, temperature=DRUM_TEMPERATURE,
                                      guidance=guidance)
                notes = [(h.bar * 16 * STEP_TICKS + h.step * STEP_TICKS + round(h.offset * STEP_TICKS), h.pitch,
                          h.velocity) for h in hits]
                labels = classifier.predict(drum_eval.bar_features(drum_eval.grid_of(notes, 4 * STEP_TICKS, 4.0, 8)))
                right, total = right + int((labels == genre).sum()), total + len(labels)
        return right / total

    assert DRUM_GENRE_GUIDANCE > 1.0
    alone, guided = heard(1.0), heard(DRUM_GENRE_GUIDANCE)
    assert guided >= alone + 0.08, (alone, guided)


def test_a_time_keeper_plays_the_models_hat_strokes_and_its_primer_keeps_time_on_that_voice():
    from engine.model.drums import HATS, VOICE_NAMES, keeper_of

    ride = VOICE_NAMES.index("ride")
    model = load_default()
    args = ([16] * 4, "jazz", 160.0, [False] * 4, [True, False, False, False])
    kept = [h for s in range(4) for h in model.generate(*args, seed=s, time_keeper=ride)]
    free = [h for s in range(4) for h in model.generate(*args, seed=s)]
    assert not [h for h in kept if h.voice in HATS]
    assert sum(h.voice == ride for h in kept) > sum(h.voice == ride for h in free)
    assert sum(h.voice == ride for h in kept) >= 4 * 4 * 4, "at least a stroke a beat on the ride"
    # Groove's jazz grooves are kept on the ride or on the hats; with a time keeper only the ride's prime the model
    drawn = {keeper_of(model.primer("jazz", np.random.default_rng(s))) for s in range(40)}
    assert drawn - {ride}, "the genre's grooves include some kept on the hats"
    assert {keeper_of(model.primer("jazz", np.random.default_rng(s), ride)) for s in range(40)} == {ride}


def test_per_bar_rules_apply_as_given_in_fill_bars_too():
    from engine.model.drums import ALWAYS, FREE, NEVER

    fill = [False, True]
    rules = np.full((2, POSITIONS, 9), FREE, np.int8)
    rules[:, :, 1] = NEVER
    rules[0, [0, 6, 12], 1] = ALWAYS  # a clave on the snare voice: 1, 2&, 4 | 2, 3, the fill bar too
    rules[1, [4, 8], 1] = ALWAYS
    hits = load_default().generate([16] * 2, "latin", 180.0, fill, [True, False], seed=2, rules=rules)
    assert sorted((h.bar, h.step) for h in hits if h.voice == 1) == [(0, 0), (0, 6), (0, 12), (1, 4), (1, 8)]
