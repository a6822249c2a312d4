"""The vocabulary and the decoding grammar agree with MidiTok's own encoding of real notes."""
from __future__ import annotations

import pytest
from symusic import Note, Score, TimeSignature, Track

from engine.model.decode import Constraints, Grammar
from engine.model.tokens import Vocab, build_tokenizer, condition_names, density_level, tempo_bucket
from engine.music.theory import Key, Meter


@pytest.fixture(scope="module")
def vocab() -> Vocab:
    return Vocab(build_tokenizer())


def _two_voices(meter: Meter, bars: int) -> Score:
    """A melody on a 16th grid and a bass on beats, D major, monophonic voices."""
    score = Score(480)
    score.time_signatures.append(TimeSignature(0, meter.numerator, meter.denominator))
    bar_ticks = round(meter.quarters_per_bar * 480)
    scale = [62, 64, 66, 67, 69, 71, 73, 74]
    melody, bass = Track(program=0), Track(program=3)
    for bar in range(bars):
        t, k = bar * bar_ticks, 0
        while t < (bar + 1) * bar_ticks:
            length = 240 if k % 3 else 120
            length = min(length, (bar + 1) * bar_ticks - t)
            melody.notes.append(Note(t, length, scale[(bar + k) % 8], 80))
            t, k = t + length, k + 1
        bass.notes.append(Note(bar * bar_ticks, bar_ticks, 38 + 5 * (bar % 2), 80))
    score.tracks.extend([melody, bass])
    return score


@pytest.mark.parametrize("meter", [Meter(4, 4), Meter(7, 8), Meter(3, 4), Meter(5, 8), Meter(6, 8)])
def test_grammar_accepts_miditok_tokens_and_times_them_like_the_source(vocab: Vocab, meter: Meter) -> None:
    bars = 3
    score = _two_voices(meter, bars)
    sequence = vocab.tokenizer.encode(score)
    ids = (sequence[0] if isinstance(sequence, list) else sequence).ids
    # Source music is not framed like a fresh clip: no tonic-chord opening, no cadence.
    grammar = Grammar(vocab, Constraints(Key("D", "major"), meter, bars, {0: (60, 84), 3: (34, 62)},
                                         cadence=False, opening=False))
    for token in ids:
        assert bool(grammar.allowed()[token]), f"{vocab.names[token]} refused in phase {grammar.phase}"
        grammar.advance(token)
    assert bool(grammar.allowed()[vocab.eos])
    decoded = sorted((n.slot, n.time, n.duration, n.pitch) for n in grammar.notes)
    source = sorted((slot, n.time, n.duration, n.pitch) for slot, track in ((0, score.tracks[0]), (3, score.tracks[1]))
                    for n in track.notes)
    assert decoded == source


def test_every_bar_starts_with_its_time_signature(vocab: Vocab) -> None:
    ids = vocab.tokenizer.encode(_two_voices(Meter(7, 8), 2))
    names = [vocab.names[i] for i in (ids[0] if isinstance(ids, list) else ids).ids]
    assert [names[i + 1] for i, n in enumerate(names) if n == "Bar_None"] == ["TimeSig_7/8", "TimeSig_7/8"]


def test_conditioning_tokens_follow_miditok_vocabulary(vocab: Vocab) -> None:
    base = len(vocab.tokenizer.vocab)
    assert vocab.size == base + len(condition_names())
    assert vocab.id("Style_chorale") == base
    assert vocab.names[vocab.id("Slot_3")] == "Slot_3"
    with pytest.raises(KeyError, match="no token"):
        vocab.id("Style_polka")


def test_buckets() -> None:
    assert [tempo_bucket(b) for b in (60, 70, 100, 149.9, 200)] == ["Tempo_0", "Tempo_1", "Tempo_2", "Tempo_3",
                                                                    "Tempo_4"]
    assert tempo_bucket(None) == "Tempo_unknown"
    assert [density_level(x) for x in (0.5, 1.0, 1.5, 3.0)] == [0, 1, 2, 3]
