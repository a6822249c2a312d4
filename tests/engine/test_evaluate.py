"""The evaluation on a few prompts: checks that pass when the clip obeys and fail when it does not."""
from __future__ import annotations

import io
import json
from pathlib import Path

import mido
import numpy as np
import pytest

from engine.evaluation import evaluate
from tests.conftest import run_cli

PROMPTS = [
    {"prompt": "Dark techno at 130 BPM in A minor, 4 bars",
     "expect": {"tempo_bpm": 130, "key": "A minor", "meter": "4/4", "bars": 4, "roles": ["drums", "bass"],
                "genre": "techno"}},
    {"prompt": "A cheerful Irish jig on fiddle and tin whistle in G major, 6/8, 4 bars",
     "expect": {"key": "G major", "meter": "6/8", "instruments": ["fiddle", "whistle"], "roles_absent": ["drums"],
                "genre": "folk", "mood": "happy"}},
    {"prompt": "Lo-fi hip hop beat, 85 bpm, electric piano in Bb major, laid back swing, 4 bars",
     "expect": {"tempo_bpm": 85, "instruments": ["electric piano"], "swing": True}},
]


def write_prompts(path: Path, entries: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(e) for e in entries) + "\n", encoding="utf-8")
    return path


def test_load_prompts_reads_the_schema(tmp_path: Path) -> None:
    cases = evaluate.load_prompts(write_prompts(tmp_path / "p.jsonl", PROMPTS))
    assert [c.line for c in cases] == [1, 2, 3] and cases[0].expect["tempo_bpm"] == 130


@pytest.mark.parametrize(("line", "message"), [
    ("not json", ":1: not JSON"),
    ('{"expect": {}}', 'needs a non-empty "prompt"'),
    ('{"prompt": "x", "expect": {"tempo": 120}}', "unknown expect field(s) tempo; accepted: tempo_bpm"),
    ('{"prompt": "x", "expect": {"roles": ["lead"]}}', "unknown role(s) lead in roles"),
])
def test_load_prompts_names_the_bad_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate.load_prompts(path)


def test_evaluate_a_few_prompts_and_write_the_report(tmp_path: Path) -> None:
    cases = evaluate.load_prompts(write_prompts(tmp_path / "p.jsonl", PROMPTS))
    result = evaluate.evaluate(cases, seeds=2)
    accuracy = result.accuracy()
    assert {"tempo", "key", "meter", "bars", "roles", "roles_absent", "instruments", "swing", "genre",
            "mood"} <= set(accuracy)
    ok, total = accuracy["overall"]
    assert total == sum(len(c.checks) for c in result.clips) and ok >= total - 2
    for clip in result.clips:
        assert len(clip.musicality) == len(clip.latency_s) == len(clip.novelty_n) == 2
        assert {check.seed for check in clip.checks} == {0, 1}
        assert all(0.0 <= m["scale_consistency"] <= 1.0 for m in clip.musicality)
        assert 0.0 <= clip.diversity <= 1.0 and min(clip.latency_s) > 0
    report = evaluate.write_report(result, tmp_path / "out", "p.jsonl")
    text = report.read_text()
    assert "| **overall** |" in text and "pitch_class_entropy" in text
    for png in ("control_accuracy.png", "musicality.png", "latency.png"):
        assert (tmp_path / "out" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["accuracy"]["overall"] == {"passed": ok, "checks": total}
    # the jig's two melody parts and the hip hop band are several voices; they are measured against the
    # held-out pieces in several parts, whole and cut to the clips' 4 bars
    assert [evaluate.clip_texture(c.spec) for c in result.clips[1:]] == [evaluate.SEVERAL_VOICES] * 2
    assert set(result.reference_textures) == {evaluate.ONE_LINE, evaluate.SEVERAL_VOICES}
    rows = {(r["texture"], r["metric"]): r for r in data["by_texture"]}
    several = rows[(evaluate.SEVERAL_VOICES, "polyphony")]
    assert several["reference_at_clip_lengths"] > 2 and several["reference_mean"] > 2
    assert several["reference_pieces"] == result.reference_textures.count(evaluate.SEVERAL_VOICES)
    assert "Like with like" in text


def test_checks_fail_when_the_clip_does_not_obey(tmp_path: Path) -> None:
    wrong = [{"prompt": "Dark techno at 130 BPM in A minor, 4 bars",
              "expect": {"tempo_bpm": 100, "key": "F# major", "meter": "7/8", "bars": 9, "roles_absent": ["drums"],
                         "instruments": ["banjo"], "genre": "ambient", "swing": True, "arc": "crescendo"}}]
    result = evaluate.evaluate(evaluate.load_prompts(write_prompts(tmp_path / "w.jsonl", wrong)), seeds=1)
    failed = {c.attribute for c in result.clips[0].checks if not c.ok}
    assert failed == {"tempo", "key", "meter", "bars", "roles_absent", "instruments", "genre", "swing", "arc"}


def test_a_refused_prompt_fails_its_checks_and_the_report_says_why(tmp_path: Path) -> None:
    entries = [{"prompt": "techno at 1000 bpm", "expect": {"tempo_bpm": 1000}}, PROMPTS[0]]
    calls = []
    result = evaluate.evaluate(evaluate.load_prompts(write_prompts(tmp_path / "r.jsonl", entries)), seeds=1,
                               progress=lambda done, total: calls.append((done, total)))
    # a step per prompt, and the last one only once the reference set is measured
    assert calls == [(1, 3), (2, 3), (3, 3)]
    refused = result.clips[0].checks
    assert [(c.attribute, c.ok) for c in refused] == [("accepted", False)] and "20-400" in refused[0].found
    text = evaluate.write_report(result, tmp_path / "out", "r.jsonl").read_text()
    assert "refused" in text


def clip_of(notes: list[tuple[int, int, int, int]], *, channel: int = 0, program: int = 0,
            tpb: int = 480) -> evaluate.MidiClip:
    """A one-track SMF written by mido from (start, end, pitch, velocity), read back by the evaluator."""
    midi = mido.MidiFile(ticks_per_beat=tpb)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.Message("program_change", program=program, channel=channel, time=0))
    events = sorted([(s, 1, p, v) for s, _, p, v in notes] + [(e, 0, p, 0) for _, e, p, _ in notes])
    now = 0
    for tick, on, pitch, velocity in events:
        kind = "note_on" if on else "note_off"
        track.append(mido.Message(kind, note=pitch, velocity=velocity, channel=channel, time=tick - now))
        now = tick
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return evaluate.read_midi(buffer.getvalue())


def test_swing_is_detected_from_off_beat_positions() -> None:
    straight = clip_of([(i * 240, i * 240 + 200, 60, 80) for i in range(16)])
    swung = clip_of([(b * 480 + off, b * 480 + off + 100, 60, 80) for b in range(8) for off in (0, 320)])
    assert not evaluate.swing_detected(straight) and evaluate.swing_detected(swung)


def test_swung_sixteenths_are_swing_and_straight_sixteenths_are_not() -> None:
    # a hat in 16ths: straight (0, 120, 240, 360 ticks of a 480-tick beat) and MPC-swung (e and a late: 160, 400)
    straight = clip_of([(b * 480 + off, b * 480 + off + 60, 42, 80) for b in range(8) for off in (0, 120, 240, 360)])
    swung = clip_of([(b * 480 + off, b * 480 + off + 60, 42, 80) for b in range(8) for off in (0, 160, 240, 400)])
    assert not evaluate.swing_detected(straight) and evaluate.swing_detected(swung)


def test_arc_is_detected_from_velocities() -> None:
    bar = 1920
    rising = clip_of([(b * bar, b * bar + 400, 60, 40 + 8 * b) for b in range(9)])
    falling = clip_of([(b * bar, b * bar + 400, 60, 110 - 8 * b) for b in range(9)])
    steady = clip_of([(b * bar, b * bar + 400, 60, 90) for b in range(9)])
    assert [evaluate.arc_detected(c, bar) for c in (rising, falling, steady)] == ["crescendo", "decrescendo", "steady"]


def test_roles_and_instruments_from_programs_and_pitches() -> None:
    drums = clip_of([(0, 100, 36, 100)], channel=9)
    bass = clip_of([(0, 400, 36, 90), (480, 900, 40, 90)], program=33)
    strings = clip_of([(0, 900, 60, 80), (0, 900, 64, 80), (960, 1800, 62, 80), (960, 1800, 65, 80)], program=48)
    assert evaluate.roles_present(drums) == {"drums"} and evaluate.roles_present(bass) == {"bass"}
    assert evaluate.roles_present(strings) == {"chords"}
    assert evaluate.instrument_present(strings, "strings") and not evaluate.instrument_present(strings, "piano")
    assert evaluate.instrument_present(bass, "electric bass")


def test_key_finder_reads_a_scale_with_its_tonic() -> None:
    e_minor = [64, 66, 67, 69, 71, 72, 74, 76, 64, 67, 71, 64]
    clip = clip_of([(i * 480, i * 480 + 450, p, 80) for i, p in enumerate(e_minor)])
    assert evaluate.find_key(clip) == (4, "minor")


def test_cadenza_eval_command(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:2])
    done = run_cli("eval", "--prompts", str(prompts), "--out", str(tmp_path / "report"), "--seeds", "1")
    assert done.returncode == 0, done.stderr
    assert "overall" in done.stdout and (tmp_path / "report" / "report.md").exists()
    bad = run_cli("eval", "--prompts", str(tmp_path / "missing.jsonl"))
    assert bad.returncode == 2 and "cannot read prompts file" in bad.stderr


def test_the_reference_is_also_measured_at_the_clips_own_lengths() -> None:
    """Short clips are matched with the reference pieces cut into windows of their bar count, not whole pieces."""
    from engine.evaluation import metrics, reference
    from engine.evaluation.evaluate import ClipResult, same_length_reference, windows

    pieces = reference.load()[:6]

    def clip(bars: int, seeds: int) -> ClipResult:
        return ClipResult("p", 1, {"bars": bars}, [], [{}] * seeds, [], [], 0.0, [])

    def cut(bars: int) -> float:
        return float(np.mean([np.mean([metrics.musicality(w)["pitch_class_entropy"] for w in windows(p.score, bars)])
                              for p in pieces]))

    matched = same_length_reference([clip(2, 3), clip(8, 1)], pieces)
    assert matched["pitch_class_entropy"] == pytest.approx((3 * cut(2) + cut(8)) / 4)
    whole = float(np.mean([metrics.musicality(p.score)["pitch_class_entropy"] for p in pieces]))
    assert cut(2) < whole  # fewer notes, lower entropy: why the matched figure is there


def test_windows_cover_a_piece_bar_by_bar_from_zero() -> None:
    """Every whole window of N bars, each moved to start at 0; a short piece is one window."""
    from symusic import Note, Score, TimeSignature, Track

    from engine.evaluation.evaluate import windows

    score = Score(480)
    score.time_signatures.append(TimeSignature(0, 3, 4))
    track = Track(name="m", program=0)
    for beat in range(3 * 10):  # ten bars of 3/4, a note on every beat, pitch = bar number
        track.notes.append(Note(beat * 480, 480, 60 + beat // 3, 80))
    score.tracks.append(track)
    parts = windows(score, 4)
    assert len(parts) == 2  # bars 1-4 and 5-8; the last two bars make no whole window
    assert [sorted({n.pitch for n in w.tracks[0].notes}) for w in parts] == [[60, 61, 62, 63], [64, 65, 66, 67]]
    assert all(min(n.time for n in w.tracks[0].notes) == 0 for w in parts)
    assert len(windows(score, 16)) == 1 and len(windows(score, 16)[0].tracks[0].notes) == 30


def test_novelty_index_finds_the_longest_shared_run_and_stays_small_for_a_repetitive_line() -> None:
    from symusic import Note, Score, Track

    from engine.evaluation.evaluate import NoveltyIndex

    training = [(2, 2, 1, -5, 0, 0, 0, 0), (0,) * 200, (7, -7) * 50]
    index = NoveltyIndex(training)
    score = Score(480)
    track = Track(name="melody", program=0)
    pitches = [60, 62, 64, 65, 60, 61]       # intervals 2 2 1 -5 1: the first four are in the training set
    track.notes.extend(Note(i * 480, 480, p, 90) for i, p in enumerate(pitches))
    score.tracks.append(track)
    assert index.longest_shared(score) == 5
    taiko = Track(name="taiko", program=116)  # one note struck again and again: every length is shared
    taiko.notes.extend(Note(i * 240, 240, 50, 90) for i in range(100))
    score.tracks.append(taiko)
    assert index.longest_shared(score) == 65  # NOVELTY_MAX_N intervals + 1
    assert sum(table.nbytes for table in index._grams.values()) < 64 * 8 * 400
