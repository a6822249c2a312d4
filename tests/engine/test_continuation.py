"""Continuing an input clip: its key and chords are detected, its key and tempo kept."""
from __future__ import annotations

import pytest
from symusic import Note, Score, Tempo, TimeSignature, Track

from engine.compose.continuation import continue_clip
from engine.errors import SpecError
from engine.model.decode import allowed_pitch_classes
from engine.music.analysis import find_key, score_notes
from engine.music.midi import score_to_smf, smf_to_score
from engine.music.spec import MusicSpec
from engine.music.theory import Key, Meter


def _spec(seed: int) -> MusicSpec:
    return MusicSpec(prompt="continue", tempo_bpm=120.0, key=Key("C", "major"), meter=Meter(4, 4), bars=4,
                     start_bar=1, parts=[], style="folk", mood="neutral", arc="steady", swing=False, seed=seed)


def _clip(tonic: int, minor: bool, meter: Meter, qpm: float) -> bytes:
    """Four bars: a melody and a bass line in a key, as SMF bytes (what a DAW would send)."""
    steps = (0, 2, 3, 5, 7, 8, 11) if minor else (0, 2, 4, 5, 7, 9, 11)
    scale = [tonic + 60 + s for s in steps] + [tonic + 72]
    degrees = [0, 2, 4, 7, 6, 4, 3, 1, 2, 4, 5, 4, 6, 1, 0, 0]
    bar = round(meter.quarters_per_bar * 480)
    score = Score(480)
    score.tempos.append(Tempo(0, qpm=qpm))
    score.time_signatures.append(TimeSignature(0, meter.numerator, meter.denominator))
    melody, bass = Track(name="flute", program=73), Track(name="cello", program=42)
    per_bar = 4
    for i, d in enumerate(degrees):
        melody.notes.append(Note(i * bar // per_bar, bar // per_bar, scale[d], 90))
    for b, root in enumerate((0, 3, 5, 7) if minor else (0, 5, 7, 0)):  # i III iv V, or I IV V I
        bass.notes.append(Note(b * bar, bar, tonic + 36 + root + (12 if tonic + 36 + root < 40 else 0), 70))
    score.tracks.extend([melody, bass])
    return score_to_smf(score)


@pytest.mark.parametrize(("tonic", "minor", "meter", "qpm"),
                         [(9, True, Meter(4, 4), 93.0), (2, False, Meter(3, 4), 144.0), (7, False, Meter(6, 8), 76.5)])
def test_continuation_keeps_key_and_tempo(tonic: int, minor: bool, meter: Meter, qpm: float) -> None:
    clip = smf_to_score(_clip(tonic, minor, meter, qpm))
    for seed in range(5):
        result = continue_clip(clip, _spec(seed), bars=4)
        assert (result.key.tonic_pc, result.key.mode) == (tonic, "minor" if minor else "major")
        assert result.tempo_bpm == pytest.approx(qpm, abs=1e-3)
        assert result.meter == meter and result.input_bars == 4
        assert len(result.chords) == 4 and result.chords[0].degree == 1
        # read the continuation back as a MIDI file would be
        back = smf_to_score(score_to_smf(result.score))
        assert back.tempos[0].qpm == pytest.approx(qpm, abs=1e-3)
        notes = score_notes(back)
        assert notes, "the continuation is empty"
        pcs = allowed_pitch_classes(result.key, chromatic=False)
        assert all(n.pitch % 12 in pcs for n in notes)
        bar = round(meter.quarters_per_bar * 480)
        assert max(n.time + n.duration for n in notes) <= 4 * bar
        together, _ = find_key(score_notes(clip) + notes)
        assert (together.tonic_pc, together.mode) == (tonic, result.key.mode)
        assert [t.name for t in back.tracks] == ["flute", "cello"]


def test_continuation_is_deterministic_per_seed() -> None:
    clip = smf_to_score(_clip(9, True, Meter(4, 4), 100.0))
    a = score_to_smf(continue_clip(clip, _spec(1), 2).score)
    assert a == score_to_smf(continue_clip(clip, _spec(1), 2).score)
    assert a != score_to_smf(continue_clip(clip, _spec(2), 2).score)


def test_a_clip_without_pitched_notes_is_refused() -> None:
    score = Score(480)
    drums = Track(name="drums", program=0, is_drum=True)
    drums.notes.append(Note(0, 120, 36, 100))
    score.tracks.append(drums)
    with pytest.raises(SpecError, match="no pitched notes"):
        continue_clip(score, _spec(0), 2)
