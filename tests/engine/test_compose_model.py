"""compose(spec) with the learned model: the contract, determinism, and the asked request in the MIDI.

The Score is written to SMF bytes and read back by mido (an independent reader) for tempo,
meter and note positions.
"""
from __future__ import annotations

import io

import mido
import pytest

from engine.compose.pipeline import compose, plan_voices
from engine.model import generator as generator_module
from engine.model import parts as partmodel
from engine.model.decode import allowed_pitch_classes
from engine.music.midi import score_to_smf
from engine.music.spec import MusicSpec, Part
from engine.music.theory import Key, Meter

PIANO = Part("piano", "keys", "Acoustic Grand Piano", 0, False, 21, 108)
BASS = Part("bass", "bass", "Electric Bass (finger)", 33, False, 28, 67)
DRUMS = Part("drums", "drums", "Standard Kit", 0, True, 35, 81)
LEAD = Part("lead", "melody", "Lead 1 (square)", 80, False, 48, 96)
GUITAR = Part("guitar", "chords", "Electric Guitar (clean)", 27, False, 40, 86)


FOUR_FOUR, A_MINOR = Meter(4, 4), Key("A", "minor")


def make_spec(seed: int = 1, meter: Meter = FOUR_FOUR, key: Key = A_MINOR, bars: int = 8,
              parts: list[Part] | None = None, style: str = "pop", arc: str = "steady", swing: bool = False,
              tempo: float = 123.5) -> MusicSpec:
    return MusicSpec(prompt="test", tempo_bpm=tempo, key=key, meter=meter, bars=bars, start_bar=1,
                     parts=parts or [PIANO, BASS, DRUMS, LEAD], style=style, mood="neutral", arc=arc, swing=swing,
                     seed=seed)


def read_back(score) -> mido.MidiFile:
    return mido.MidiFile(file=io.BytesIO(score_to_smf(score)))


def test_same_spec_and_seed_give_the_same_bytes_and_other_seeds_differ() -> None:
    first = score_to_smf(compose(make_spec(seed=5)))
    assert score_to_smf(compose(make_spec(seed=5))) == first
    others = {score_to_smf(compose(make_spec(seed=s))) for s in (6, 7, 8)}
    assert first not in others and len(others) == 3
    melody = [sorted((n.time, n.pitch) for n in compose(make_spec(seed=s)).tracks[3].notes) for s in (5, 6)]
    shared = len(set(melody[0]) & set(melody[1]))
    assert shared < 0.5 * min(len(melody[0]), len(melody[1])), "two seeds gave nearly the same melody"


@pytest.mark.parametrize(("meter", "key"), [(Meter(4, 4), Key("A", "minor")), (Meter(7, 8), Key("D", "dorian")),
                                           (Meter(3, 4), Key("Eb", "major"))])
def test_tempo_meter_bars_and_key_hold_in_the_written_midi(meter: Meter, key: Key) -> None:
    spec = make_spec(seed=11, meter=meter, key=key, bars=6)
    midi = read_back(compose(spec))
    tempos = [m for t in midi.tracks for m in t if m.type == "set_tempo"]
    assert [round(mido.tempo2bpm(m.tempo), 3) for m in tempos] == [123.5]
    signatures = [(m.numerator, m.denominator) for t in midi.tracks for m in t if m.type == "time_signature"]
    assert signatures == [(meter.numerator, meter.denominator)]
    bar_ticks = round(meter.quarters_per_bar * midi.ticks_per_beat)
    pcs = allowed_pitch_classes(key, chromatic=False)
    for track in midi.tracks:
        now, name = 0, None
        for message in track:
            now += message.time
            if message.type == "track_name":
                name = message.name
            if message.type == "note_on" and message.velocity > 0:
                assert now < spec.bars * bar_ticks, f"{name}: note at {now} after the last bar"
                if name != "drums":
                    assert message.note % 12 in pcs, f"{name}: {message.note} not in {key}"
            if message.type == "note_off" or (message.type == "note_on" and message.velocity == 0):
                assert now <= spec.bars * bar_ticks


def test_model_voices_land_in_the_parts_ranges() -> None:
    spec = make_spec(seed=3)
    plan = plan_voices(spec.parts)
    assert plan.slots_of == {3: (0,), 0: (1, 2, 3)}
    score = compose(spec)
    lead = score.tracks[3]
    assert lead.notes and all(plan.ranges[0][0] <= n.pitch <= plan.ranges[0][1] for n in lead.notes)
    assert len(score.tracks[0].notes) > 0 and len(score.tracks[2].notes) > 0


def test_a_string_quartet_gets_four_model_voices() -> None:
    violin = Part("violin", "melody", "Violin", 40, False, 55, 103)
    viola = Part("viola", "keys", "Viola", 41, False, 48, 91)
    cello = Part("cello", "melody", "Cello", 42, False, 36, 76)
    plan = plan_voices([violin, Part("violin_2", "melody", "Violin", 40, False, 55, 103), viola, cello])
    assert plan.slots_of == {0: (0,), 1: (1,), 3: (3,), 2: (2,)}


def test_dynamics_arc_and_swing_are_applied_to_model_voices() -> None:
    flat = compose(make_spec(seed=2, arc="steady"))
    rising = compose(make_spec(seed=2, arc="crescendo"))
    # The learned velocities differ note by note; the arc scales each: the same note gains from bar to bar.
    flat_velocity = {(i, n.time, n.pitch): n.velocity for i in (0, 1, 3) for n in flat.tracks[i].notes}
    ratio = {key: n.velocity / flat_velocity[key] for i in (0, 1, 3) for n in rising.tracks[i].notes
             if (key := (i, n.time, n.pitch)) in flat_velocity}
    early = [r for (_, time, _), r in ratio.items() if time < 2 * 1920]
    late = [r for (_, time, _), r in ratio.items() if time >= 6 * 1920]
    assert early and late and max(early) < min(late)
    assert [n.pitch for n in flat.tracks[3].notes] == [n.pitch for n in rising.tracks[3].notes]
    swung = compose(make_spec(seed=2, swing=True))
    straight = [n.time % 480 for i in (0, 3) for n in flat.tracks[i].notes]
    swung_phase = [n.time % 480 for i in (0, 3) for n in swung.tracks[i].notes]
    assert 240 not in swung_phase  # no straight off-beat eighth survives
    assert swung_phase.count(320) == straight.count(240)  # each moved to the triplet position


def test_a_missing_checkpoint_fails_loudly_naming_the_path(monkeypatch, tmp_path) -> None:
    missing = tmp_path / "nowhere.pt"
    monkeypatch.setenv(partmodel.CHECKPOINT_ENV, str(missing))  # the part model writes pop's parts
    with pytest.raises(generator_module.CheckpointMissing, match=str(missing)):
        compose(make_spec())
    monkeypatch.setenv(generator_module.CHECKPOINT_ENV, str(missing))  # the corpus model a folk melody
    monkeypatch.delenv(partmodel.CHECKPOINT_ENV)
    with pytest.raises(generator_module.CheckpointMissing, match=str(missing)):
        compose(make_spec(style="folk"))


def test_drums_only_needs_no_pitched_model(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(generator_module.CHECKPOINT_ENV, str(tmp_path / "nowhere.pt"))
    monkeypatch.setenv(partmodel.CHECKPOINT_ENV, str(tmp_path / "nowhere.pt"))
    score = compose(make_spec(parts=[DRUMS]))
    assert len(score.tracks[0].notes) > 0


def test_only_heard_voices_are_written_and_harmony_asks_the_chorale_style() -> None:
    from engine.compose.pipeline import model_request

    melody_only = plan_voices([LEAD, BASS, DRUMS, GUITAR])
    assert list(melody_only.ranges) == [0]
    # a melody alone is asked in the style's own token (the folk style's jigs and reels: the celtic tunes)
    assert model_request(make_spec(parts=[LEAD, BASS, DRUMS, GUITAR], style="folk"), melody_only).style == "celtic"
    ghost = plan_voices([BASS, DRUMS, GUITAR])
    assert ghost.slots_of == {} and list(ghost.ranges) == [0, 1, 2, 3]
    assert model_request(make_spec(parts=[BASS, DRUMS, GUITAR]), ghost).style == "chorale"


@pytest.mark.parametrize("seed", range(4))
def test_a_tune_from_the_corpus_model_starts_within_a_beat_and_leaves_no_bar_long_hole(seed: int) -> None:
    """The corpus's jigs open with a pickup (the fiddle waited most of its first bar), and a bar that reached
    its note cap used to release the rest limit (a 7/4 rag's right hand fell silent for six quarters)."""
    from engine.compose.pipeline import compose
    from engine.understand.prompt import Overrides, understand

    jig = compose(understand("irish jig on fiddle", Overrides(seed=seed, bars=8)))
    fiddle = next(t for t in jig.tracks if t.name == "fiddle")
    assert min(n.time for n in fiddle.notes) <= jig.tpq
    spec = understand("Upbeat ragtime piano in 7/4", Overrides(seed=seed + 4, bars=8))
    rag = compose(spec)
    tune = sorted(next(t for t in rag.tracks if t.name == "piano").notes, key=lambda n: n.time)
    gaps = [b.time - (a.time + a.duration) for a, b in zip(tune, tune[1:], strict=False)]
    assert max(gaps) <= 2 * rag.tpq, max(gaps) / rag.tpq
