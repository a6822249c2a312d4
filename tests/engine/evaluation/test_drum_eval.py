"""Drum evaluation: histogram overlap, bar variation, fills at phrase ends, the genre classifier."""
import numpy as np

from engine.evaluation import drums
from engine.training.groove import N_VOICES


def _grid(bars: list[np.ndarray]) -> drums.DrumGrid:
    hits = np.concatenate(bars).astype(bool)
    return drums.DrumGrid(hits, hits * 90.0, np.zeros(hits.shape, np.float32), 16)


def _bar(kick_steps=(0, 8), snare_steps=(4, 12), toms=()) -> np.ndarray:
    b = np.zeros((16, N_VOICES), bool)
    b[list(kick_steps), 0] = True
    b[list(snare_steps), 1] = True
    b[list(toms), 4] = True
    return b


def test_overlap_is_one_for_the_same_distribution_and_zero_for_disjoint_ones():
    p = drums.histogram(np.array([10, 20, 30, 100]), drums.VELOCITY_EDGES)
    q = drums.histogram(np.array([120, 121]), drums.VELOCITY_EDGES)
    assert drums.overlap(p, p) == 1.0 and drums.overlap(p, q) == 0.0


def test_a_repeated_bar_has_no_variation_and_a_changed_one_has_some():
    assert drums.variation(_grid([_bar()] * 4)) == (0.0, 0.0)
    differ, jaccard = drums.variation(_grid([_bar(), _bar(kick_steps=(0, 6, 8))] * 2))
    assert differ == 1.0 and 0 < jaccard < 1


def test_fills_are_counted_at_phrase_ends_and_elsewhere():
    groove, fill = _bar(), _bar(toms=(8, 10, 12, 14))
    bars = [groove, groove, groove, fill, groove, fill, groove, groove]
    assert drums.fills(_grid(bars)) == (2, 1, 6, 1)


def test_grid_of_notes_puts_each_hit_on_its_nearest_step_with_its_offset():
    g = drums.grid_of([(0, 36, 100), (130, 42, 60), (235, 38, 80)], 480, 4.0, 1)
    assert g.hits[0, 0] and g.hits[1, 2] and g.hits[2, 1]
    assert np.isclose(g.offset[1, 2], 10 / 120) and np.isclose(g.offset[2, 1], -5 / 120)
    assert g.velocity[1, 2] == 60


def test_classifier_learns_separable_bar_patterns():
    rng = np.random.default_rng(0)
    four = [_bar(kick_steps=(0, 4, 8, 12))] * 30
    half = [_bar(kick_steps=(0,), snare_steps=(8,))] * 30
    features = np.concatenate([drums.bar_features(_grid(four)), drums.bar_features(_grid(half))])
    features += rng.normal(0, 0.01, features.shape)
    labels = np.array(["dance"] * 30 + ["rock"] * 30)
    clf = drums.train_classifier(features, labels, steps=100)
    assert (clf.predict(features) == labels).mean() == 1.0


def test_committed_reference_holds_groove_histograms_and_a_classifier():
    summary, clf = drums.reference()
    assert np.isclose(sum(summary["velocity_hist"]), 1.0) and np.isclose(sum(summary["offset_hist"]), 1.0)
    assert {"rock", "funk", "jazz", "latin"} <= set(clf.genres)
    assert all(0.0 <= a <= 1.0 for a in summary["classifier_real_accuracy"].values())


def test_the_classifier_has_a_real_figure_and_an_unseen_cross_check_for_every_genre_it_knows():
    summary, clf = drums.reference()
    assert summary["classifier_real_method"].startswith("leave one drummer out")
    assert set(summary["classifier_real_accuracy"]) == set(clf.genres) == set(summary["classifier_unseen_accuracy"])
    # genres held out from only one or two recordings are no classes: a class from one recording learns the recording
    assert not {"reggae", "punk", "highlife"} & set(clf.genres)


def _performance(name: str, genre: str, kind: str = "beat"):
    from engine.training.groove import Performance

    z = np.zeros((16, 9))
    return Performance(name=name, genre=genre, bpm=100.0, numerator=4, denominator=4, kind=kind, split="test",
                       hits=z, velocity=z, offset=z, fill=np.zeros(1, bool), phrase_start=np.zeros(1, bool))


def test_a_genre_needs_three_beat_recordings_by_two_drummers_to_be_a_class():
    perfs = ([_performance(f"drummer1/s/{i}_rock.mid", "rock") for i in range(2)]
             + [_performance("drummer2/s/9_rock.mid", "rock")]
             + [_performance(f"drummer5/s/{i}_reggae.mid", "reggae") for i in range(4)]  # one drummer
             + [_performance("drummer1/s/7_jazz.mid", "jazz"), _performance("drummer2/s/8_jazz.mid", "jazz")]
             + [_performance(f"drummer{i}/s/5_funk.mid", "funk", "fill") for i in range(3)])  # fills do not count
    assert drums.classifier_genres(perfs) == ["rock"]


def test_pooled_genre_accuracy_compares_only_genres_that_have_held_out_real_bars():
    summary, _ = drums.reference()
    real = summary["classifier_real_accuracy"]
    assert "reggae" not in real  # Groove's held-out splits have one reggae beat recording: no class
    base = {"velocity_counts": [1] * 16, "offset_counts": [1] * 20, "bars": 4, "bars_differ": 1.0, "jaccard": 0.3,
            "phrase_end_bars": 1, "phrase_end_fills": 0, "other_bars": 3, "other_fills": 0}
    figures = [{**base, "genre": "rock", "genre_right": 3, "genre_bars": 4},
               {**base, "genre": "reggae", "genre_right": 0, "genre_bars": 4}]
    report = drums.pool(figures)
    assert (report.genre_right, report.genre_bars) == (3, 8)
    assert (report.compared_right, report.compared_bars) == (3, 4) and report.compared_accuracy == 0.75
    assert report.real_accuracy == real["rock"]


def test_the_kit_grid_leaves_out_the_hand_percussion_tracks_beside_the_kit():
    from symusic import Note, Score, Track

    score = Score(480)
    kit, congas = Track(name="drums", is_drum=True), Track(name="congas", is_drum=True)
    kit.notes.append(Note(0, 120, 36, 100))
    congas.notes.append(Note(240, 120, 50, 90))  # a key the kit grid reads (high tom)
    score.tracks.extend([kit, congas])
    both = drums.grid_of_score(score, 4.0, 1)
    only_kit = drums.grid_of_score(score, 4.0, 1, {"drums"})
    assert both.hits.sum() == 2 and only_kit.hits.sum() == 1 and only_kit.hits[0, 0]
