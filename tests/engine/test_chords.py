"""Chords as input: progressions read from the prompt or --chords, and clips that follow them bar by bar.

The clip is made by a real engine process (Generate over gRPC on loopback) and read back with mido.
"""
from __future__ import annotations

import io
import json

import mido
import pytest

from bridge.client import EngineClient, RequestRejected
from engine.errors import SpecError
from engine.music.chords import chords_of_score, key_of, parse_progression, parse_roman, parse_symbol
from engine.music.theory import Key
from engine.understand.chords import find_progression
from protos.cadenza.v1 import engine_pb2 as pb
from tests.conftest import run_cli


@pytest.mark.parametrize(("symbol", "root", "tones"), [
    ("Am7", 9, (9, 0, 4, 7)), ("Dm7", 2, (2, 5, 9, 0)), ("G7", 7, (7, 11, 2, 5)), ("Cmaj7", 0, (0, 4, 7, 11)),
    ("F#m7b5", 6, (6, 9, 0, 4)), ("Bbmaj7", 10, (10, 2, 5, 9)), ("E♭", 3, (3, 7, 10)), ("Bdim", 11, (11, 2, 5)),
    ("Csus4", 0, (0, 5, 7)), ("C/E", 0, (0, 4, 7)), ("Ab6", 8, (8, 0, 3, 5)), ("C-7", 0, (0, 3, 7, 10)),
])
def test_chord_symbols_spell_their_tones(symbol: str, root: int, tones: tuple) -> None:
    chord = parse_symbol(symbol)
    assert chord is not None and chord.root_pc == root and chord.tones == tones


def test_roman_numerals_are_read_in_the_key() -> None:
    d_major = Key("D", "major")
    assert [parse_roman(t, d_major).tones for t in ("I", "V", "vi", "IV")] == [
        (2, 6, 9), (9, 1, 4), (11, 2, 6), (7, 11, 2)]
    assert parse_roman("V7", Key("A", "minor")).tones == (4, 8, 11, 2)  # the dominant seventh: E7
    assert parse_roman("bVII", Key("C", "major")).tones == (10, 2, 5)
    assert parse_roman("ii°", Key("A", "minor")).tones == (11, 2, 5)


@pytest.mark.parametrize(("prompt", "found"), [
    ("lofi hip hop over Am7 Dm7 G7 Cmaj7", ["Am7", "Dm7", "G7", "Cmaj7"]),
    ("a ballad on C - G - Am - F, slow", ["C", "G", "Am", "F"]),
    ("pop in D major, I-V-vi-IV", ["I", "V", "vi", "IV"]),
    ("jazz: ii7 V7 Imaj7 in Bb", ["ii7", "V7", "Imaj7"]),
    ("Funky disco groove at 118 BPM in E minor with slap bass", None),
    ("A sad song. I want a piano in A minor", None),
    ("I think a B flat major waltz", None),
])
def test_progressions_are_found_in_prompts_and_lone_letters_are_not(prompt: str, found: list | None) -> None:
    progression = find_progression(prompt)
    assert (progression[0] if progression else None) == found


def test_a_bad_chord_is_refused_with_what_is_accepted() -> None:
    with pytest.raises(SpecError, match="chords: 'Hm7' is not a chord; accepted: a root A-G"):
        parse_progression("Am7 Hm7", Key("C", "major"))
    with pytest.raises(SpecError, match="chords: is empty"):
        parse_progression("  ", Key("C", "major"))


def test_the_key_comes_from_the_chords_when_the_prompt_names_none() -> None:
    key = key_of(parse_progression("Am7 Dm7 G7 Cmaj7", Key("C", "major")))
    assert (key.tonic, key.mode) == ("A", "minor")  # all four fit C major and A minor; Am7 opens
    key = key_of(parse_progression("D A Bm G", Key("C", "major")))
    assert (key.tonic, key.mode) == ("D", "major")


def _notes_by_track(midi: bytes) -> dict[str, list[tuple[int, int]]]:
    """(onset tick, pitch) per track name, read by mido."""
    tracks = {}
    for track in mido.MidiFile(file=io.BytesIO(midi)).tracks:
        now, notes = 0, []
        for message in track:
            now += message.time
            if message.type == "note_on" and message.velocity > 0:
                notes.append((now, message.note))
        tracks[track.name] = notes
    return tracks


@pytest.mark.parametrize(("prompt", "chords", "tones"), [
    ("lofi hip hop over Am7 Dm7 G7 Cmaj7 with flute, electric piano, bass and drums", None,
     [(9, 0, 4, 7), (2, 5, 9, 0), (7, 11, 2, 5), (0, 4, 7, 11)]),
    ("rock with guitar, bass and drums in E major", "I bVII IV I",
     [(4, 8, 11), (2, 6, 9), (9, 1, 4), (4, 8, 11)]),
])
def test_the_clip_follows_the_chords_bar_by_bar(engine: EngineClient, prompt: str, chords: str | None,
                                                tones: list[tuple]) -> None:
    overrides = pb.Overrides(bars=8, seed=5, **({"chords": chords} if chords else {}))
    result = engine.generate(prompt, overrides)
    assert len(result.spec.chords) == 4 and result.spec.sources["chords"] == pb.SOURCE_EXPLICIT
    assert any(note.startswith("chords ") for note in result.spec.notes)
    bar = 480 * 4
    roles = {p.name: p.role for p in result.spec.parts}
    tracks = _notes_by_track(result.midi)
    for number in range(8):
        chord = tones[number % 4]
        bass = sorted(n for n in tracks[next(k for k, r in roles.items() if r == "bass")]
                      if number * bar <= n[0] < (number + 1) * bar)
        assert bass and bass[0][1] % 12 == chord[0], f"bar {number + 1}: the bass opens off the root {chord[0]}"
        for name, role in roles.items():
            notes = [(t, p % 12) for t, p in tracks[name] if number * bar <= t < (number + 1) * bar]
            if role in ("chords", "pad"):  # the arranger's comping: every note a tone of the chord
                played = {pc for _, pc in notes}
                assert played and played <= set(chord), f"bar {number + 1}: {name} plays {played} over {chord}"
            elif role not in ("bass", "drums"):  # the model's voices: every note on a beat a tone of the chord
                on_beats = {pc for t, pc in notes if t % 480 == 0}
                assert on_beats <= set(chord), f"bar {number + 1}: {name} plays {on_beats} on the beats over {chord}"


def test_describe_shows_the_chords_and_a_bad_progression_is_a_usage_error(engine: EngineClient) -> None:
    spec = engine.describe("lofi hip hop over Am7 Dm7 G7 Cmaj7")
    assert list(spec.chords) == ["Am7", "Dm7", "G7", "Cmaj7"]
    assert (spec.key.tonic, spec.key.mode) == ("A", "minor")
    with pytest.raises(RequestRejected, match="chords: 'X7' is not a chord"):
        engine.describe("pop", pb.Overrides(chords="C X7"))
    shown = run_cli("describe", "pop over C G Am F", "--json", "--engine", engine.target)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["chords"] == ["C", "G", "Am", "F"]


def _chord_track(bars: list[list[int]], numerator: int = 4) -> bytes:
    """A MIDI file of block chords, one list of pitches per bar (written by symusic)."""
    from symusic import Note, Score, TimeSignature, Track

    score = Score(480)
    score.time_signatures.append(TimeSignature(0, numerator, 4))
    track = Track(name="chords", program=0)
    bar = 480 * numerator
    for number, pitches in enumerate(bars):
        for pitch in pitches:
            track.notes.append(Note(number * bar, bar, pitch, 80))
    score.tracks.append(track)
    return score.dumps_midi()


def test_a_chord_track_is_read_bar_by_bar() -> None:
    from symusic import Score

    data = _chord_track([[45, 57, 60, 64, 67], [38, 57, 60, 65, 62], [43, 53, 59, 62, 67], [48, 55, 59, 64, 60],
                         [], [40, 48, 55, 60], [47, 50, 53, 57]])
    assert chords_of_score(Score.from_midi(data)) == ["Am7", "Dm7", "G7", "Cmaj7", "Cmaj7", "C", "Bm7b5"]
    waltz = _chord_track([[50, 54, 57], [43, 55, 59, 62], [45, 55, 61, 64]], numerator=3)
    assert chords_of_score(Score.from_midi(waltz)) == ["D", "G", "A7"]


def test_chords_from_a_midi_file_go_into_the_spec(engine: EngineClient, tmp_path) -> None:
    track = tmp_path / "chords.mid"
    track.write_bytes(_chord_track([[45, 57, 60, 64, 67], [38, 57, 60, 65, 62], [43, 53, 59, 62, 67],
                                    [48, 55, 59, 64, 60]]))
    shown = run_cli("describe", "lofi hip hop", "--chords", str(track), "--json", "--engine", engine.target)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["chords"] == ["Am7", "Dm7", "G7", "Cmaj7"]
    (tmp_path / "empty.mid").write_bytes(b"not midi")
    bad = run_cli("describe", "pop", "--chords", str(tmp_path / "empty.mid"), "--engine", engine.target)
    assert bad.returncode == 2 and bad.stderr.startswith("cadenza: error: --chords: cannot read")
