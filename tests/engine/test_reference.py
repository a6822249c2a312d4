"""The evaluation's reference: held-out works only (by the trainer's split rule), training lines for novelty."""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest
import torch
from symusic import Note, Score, TimeSignature, Track

from engine.evaluation import evaluate, reference
from engine.model.generator import default_checkpoint
from engine.training.dataset import is_validation


def test_committed_reference_is_exactly_the_checkpoints_held_out_works() -> None:
    record = torch.load(default_checkpoint(), map_location="cpu", weights_only=False)["record"]
    pieces = reference.load()
    about = reference.about()
    assert all(is_validation(p.name) for p in pieces), "a reference piece the model trained on"
    assert len({p.name for p in pieces}) == len(pieces) == about.pieces == record["works_validation"]
    assert about.training_works == record["works_train"]
    assert about.checkpoint == default_checkpoint().name and "held out" in about.description
    assert about.training_lines == len(reference.training_lines()) > about.training_works
    for piece in pieces:
        assert min(int(n.time) for t in piece.score.tracks for n in t.notes) == 0


def _melody(pitches: list[int], start: int = 0) -> Score:
    score = Score(480)
    score.time_signatures.append(TimeSignature(0, 4, 4))
    track = Track(name="m", program=0)
    for i, pitch in enumerate(pitches):
        track.notes.append(Note(start + i * 480, 480, pitch, 80))
    score.tracks.append(track)
    return score


def test_novelty_finds_a_training_line_in_a_clip() -> None:
    """A clip that copies a training melody (transposed) shares all of it; the index is the training set."""
    line = next(line for line in reference.training_lines() if 12 <= len(line) <= 40)
    pitches = [60]
    for step in line:
        pitches.append(pitches[-1] + step)
    index = evaluate.NoveltyIndex(reference.training_lines())
    assert index.longest_shared(_melody([p + 3 for p in pitches])) == len(pitches)


def _fake_corpus(directory: Path, held: int, trained: int) -> list[str]:
    ids_held = [f"t:x:{i}" for i in range(1000) if is_validation(f"t:x:{i}")][:held]
    ids_train = [f"t:x:{i}" for i in range(1000) if not is_validation(f"t:x:{i}")][:trained]
    rows = []
    for n, work in enumerate(ids_held + ids_train):
        name = f"t/{n}.mid"
        (directory / "t").mkdir(parents=True, exist_ok=True)
        _melody([60, 62, 64, 65, 67, 65, 64], start=720).dump_midi(str(directory / name))  # a shifted pickup
        rows.append({"file": name, "collection": "t", "style": "folk", "work": work, "title": "", "meter": [4, 4],
                     "key": None, "tempo": None, "parts": 1})
    (directory / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ids_held


def test_build_splits_a_corpus_by_the_training_rule(tmp_path: Path) -> None:
    held = _fake_corpus(tmp_path / "corpus", held=2, trained=3)
    checkpoint = tmp_path / "c.pt"
    torch.save({"record": {"works_train": 3, "works_validation": 2}}, checkpoint)
    out = tmp_path / "ref.json.gz"
    written = reference.build(out, tmp_path / "corpus", checkpoint)
    assert (written.pieces, written.training_works, written.training_lines) == (2, 3, 3)
    pieces = reference.load(str(out))
    assert [p.name for p in pieces] == held
    assert [int(n.time) for n in pieces[0].score.tracks[0].notes][:2] == [0, 480]  # lead-in removed
    assert reference.training_lines(str(out))[0] == (2, 2, 1, 2, -2, -1)

    torch.save({"record": {"works_train": 4, "works_validation": 1}}, checkpoint)
    with pytest.raises(ValueError, match="trained on 4 with 1 held out"):
        reference.build(tmp_path / "other.json.gz", tmp_path / "corpus", checkpoint)


def test_a_near_zero_reference_mean_is_stated_with_absolute_gaps() -> None:
    """Empty-beat rate 0 against a reference of 0.004: the -100% stays, with points, sd and zero counts beside it."""
    check = evaluate.Check("bars", "4", "4", True)
    clip = evaluate.ClipResult("p", 1, {"style": "pop", "mood": "calm", "bars": 4}, [check],
                               [dict.fromkeys(("pitch_class_entropy", "scale_consistency", "groove_consistency",
                                               "polyphony"), 0.5) | {"empty_beat_rate": 0.0}] * 2,
                               [0.01, 0.01], [0.001, 0.001], 0.5, [3, 4])
    real = [0.0] * 9 + [0.04]
    ref = [dict.fromkeys(("pitch_class_entropy", "scale_consistency", "groove_consistency", "polyphony"), 0.5)
           | {"empty_beat_rate": v} for v in real]
    result = evaluate.EvalResult([clip], ref, len(ref), 1.0, 2)
    text = evaluate.report_markdown(result, "p.jsonl")
    row = next(line for line in text.splitlines() if line.startswith("| empty_beat_rate |"))
    assert "-0.004 (-0.4 points)" in row and "-100.0% (near 0, see note)" in row and "-0.33" in row
    assert "Exactly 0 in 2 of 2 generated clips and in 9 of 10 reference pieces" in text
    assert math.isclose(0.012, float(row.split("(")[2].split(")")[0]), abs_tol=1e-3)  # the reference sd shown
    assert "(near 0" not in next(line for line in text.splitlines() if line.startswith("| polyphony |"))


def test_the_reference_is_also_summarised_per_kind() -> None:
    """The pooled reference is mostly one-line tunes; the per-kind means show the part-writing styles apart."""
    pieces = reference.load()
    kinds = evaluate.by_kind(pieces)
    assert {kind: int(row["pieces"]) for kind, row in kinds.items()} == dict(Counter(p.kind for p in pieces))
    assert set(kinds) >= {"celtic", "chorale", "folk", "renaissance"}
    assert kinds["chorale"]["polyphony"] > 3 > kinds["folk"]["polyphony"]
    assert kinds["renaissance"]["polyphony"] > 2


def _clip(spec_parts: list[dict], polyphony: float) -> evaluate.ClipResult:
    values = dict.fromkeys(evaluate.metrics.METRICS, 0.5) | {"polyphony": polyphony}
    return evaluate.ClipResult("p", 1, {"style": "pop", "mood": "calm", "bars": 4, "parts": spec_parts},
                               [evaluate.Check("bars", "4", "4", True)], [values], [0.01], [0.001], math.nan, [3])


def test_each_clip_is_compared_with_reference_pieces_of_its_own_texture() -> None:
    """A solo line against one-part tunes, a band against works in several parts, side by side in the report."""
    cello = [{"role": "melody", "is_drum": False}]
    techno = [{"role": "bass", "is_drum": False}, {"role": "drums", "is_drum": True}]
    band = [{"role": "bass", "is_drum": False}, {"role": "chords", "is_drum": False},
            {"role": "drums", "is_drum": True}]
    piano = [{"role": "keys", "is_drum": False}]
    assert [evaluate.clip_texture({"parts": p}) for p in (cello, techno, band, piano)] == [
        evaluate.ONE_LINE, evaluate.ONE_LINE, evaluate.SEVERAL_VOICES, evaluate.SEVERAL_VOICES]
    tune, quartet = _melody([60, 62, 64]), _melody([60, 62, 64])
    quartet.tracks.append(quartet.tracks[0].copy())
    assert (evaluate.piece_texture(tune), evaluate.piece_texture(quartet)) == (evaluate.ONE_LINE,
                                                                               evaluate.SEVERAL_VOICES)

    reference_values = [dict.fromkeys(evaluate.metrics.METRICS, 0.5) | {"polyphony": v} for v in (1, 1, 1, 4, 3)]
    textures = [evaluate.ONE_LINE] * 3 + [evaluate.SEVERAL_VOICES] * 2
    result = evaluate.EvalResult([_clip(cello, 1.0), _clip(band, 3.0), _clip(piano, 2.0)], reference_values, 5, 1.0,
                                 1, reference_textures=textures)
    rows = {(texture, name): (n_clips, n_real, g, r) for texture, n_clips, n_real, name, g, r, _, _
            in evaluate.by_texture(result)}
    assert rows[(evaluate.ONE_LINE, "polyphony")] == (1, 3, 1.0, 1.0)
    assert rows[(evaluate.SEVERAL_VOICES, "polyphony")] == (2, 2, 2.5, 3.5)
    text = evaluate.report_markdown(result, "p.jsonl")
    assert "| several voices | 2 | 2 | polyphony | 2.500 | 3.500 (0.500) | n/a | -1.000 | -28.6% |" in text
    # with the same texture cut to the clips' lengths, the gap is taken to that
    result.texture_reference = {evaluate.SEVERAL_VOICES: {"polyphony": 2.0}}
    text = evaluate.report_markdown(result, "p.jsonl")
    assert "| several voices | 2 | 2 | polyphony | 2.500 | 3.500 (0.500) | 2.000 | 0.500 | 25.0% |" in text
