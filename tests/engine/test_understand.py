"""Prompt understanding: explicit attributes in the ways people write them, fuzzy ones by meaning.

Every case is a phrasing a user could type; the expected value is what a musician reads in it.
The sentence-embedding model is real (loaded once for the session, offline).
"""
from __future__ import annotations

import pytest

from engine.errors import SpecError
from engine.music.spec import Source
from engine.music.theory import Key, Meter
from engine.understand.prompt import Overrides, understand


def roles(spec) -> set[str]:
    return {p.role for p in spec.parts}


def programs(spec) -> set[int]:
    return {p.program for p in spec.parts if not p.is_drum}


@pytest.mark.parametrize(("prompt", "bpm"), [
    ("house at 120 bpm", 120),
    ("house at 120BPM", 120),
    ("a groove, 96 beats per minute", 96),
    ("tempo 92, piano", 92),
    ("tempo: 92", 92),
    ("tempo of 92", 92),
    ("♩=100 string trio", 100),
    ("♩ = 100", 100),
    ("q=84 chorale", 84),
    ("jig in 6/8, ♩.=80", 120),          # a dotted-quarter mark in 6/8: 80 x 1.5 quarters
    ("BPM: 140 techno", 140),
    ("somewhere around 120-130 bpm", 125),
    ("a fast reel", 140),
    ("slow piano", 72),
    ("very slow pads", 60),
    ("moderato, in C", 108),
    ("an uptempo rock song", 130),
    ("dubstep drop with wobble bass at 140", 140),
    ("house at 124, 8 bars", 124),
    ("celtic folk ballad with harp and flute", 70),  # the form's tempo, not folk's
    ("a lullaby for music box", 66),
    ("a funeral march for brass", 56),
])
def test_tempo_phrasings(prompt: str, bpm: float) -> None:
    assert understand(prompt).tempo_bpm == pytest.approx(bpm)


@pytest.mark.parametrize("prompt", ["ambient at 30 seconds in", "meet me at 12 bars", "mixed at 50% wet"])
def test_at_a_number_with_a_unit_is_no_tempo(prompt: str) -> None:
    assert understand(prompt).sources["tempo_bpm"] is not Source.EXPLICIT


def test_tempo_number_is_explicit_and_word_is_inferred() -> None:
    assert understand("funk at 101 bpm").sources["tempo_bpm"] is Source.EXPLICIT
    assert understand("slow funk").sources["tempo_bpm"] is Source.INFERRED


def test_tempo_out_of_range_names_the_field_and_range() -> None:
    with pytest.raises(SpecError) as error:
        understand("techno at 1000 bpm")
    assert error.value.field == "tempo_bpm" and "20-400" in str(error.value)


@pytest.mark.parametrize(("prompt", "key"), [
    ("sad song in A minor", Key("A", "minor")),
    ("in a minor, slow", Key("A", "minor")),
    ("F#m groove", Key("F#", "minor")),
    ("Bbm pads", Key("Bb", "minor")),
    ("key of C sharp minor", Key("C#", "minor")),
    ("in the key of E flat", Key("Eb", "major")),
    ("funk in Bb", Key("Bb", "major")),
    ("jazz ballad, Bb, 90 bpm", Key("Bb", "major")),
    ("B♭ major horns", Key("Bb", "major")),
    ("B♭ brass fanfare", Key("Bb", "major")),
    ("F♯ minor strings", Key("F#", "minor")),
    ("C# dorian vamp", Key("C#", "dorian")),
    ("D dorian", Key("D", "dorian")),
    ("E phrygian flamenco", Key("E", "phrygian")),
    ("A mixolydian fiddle tune", Key("A", "mixolydian")),
    ("F lydian pads", Key("F", "lydian")),
    ("happy children's song in C, 4 bars", Key("C", "major")),
    ("reggae in G with organ", Key("G", "major")),
    ("e minor metal riff", Key("E", "minor")),
    ("Ab major gospel", Key("Ab", "major")),
    ("ballad in Db", Key("Db", "major")),
    ("Cmaj7 vibes in Cmaj", Key("C", "major")),
])
def test_key_phrasings(prompt: str, key: Key) -> None:
    spec = understand(prompt)
    assert spec.key == key
    assert spec.sources["key"] is Source.EXPLICIT


def test_an_article_a_is_not_the_key_of_a() -> None:
    spec = understand("A cheerful folk tune on fiddle")
    assert spec.key.tonic != "A"
    assert spec.sources["key"] is not Source.EXPLICIT


@pytest.mark.parametrize("prompt", ["a sad piano piece in a minor key", "something in minor",
                                    "melody in a minor tonality", "A minor-key elegy for strings"])
def test_a_minor_key_without_a_tonic_is_a_mode_not_a_minor_explicitly(prompt: str) -> None:
    spec = understand(prompt)
    assert spec.key.mode == "minor"
    assert spec.sources["key"] is Source.INFERRED
    assert any("minor key was asked without a tonic" in note for note in spec.notes)


def test_a_major_key_without_a_tonic() -> None:
    spec = understand("upbeat tune in a major key")
    assert spec.key == Key("C", "major") and spec.sources["key"] is Source.INFERRED


@pytest.mark.parametrize(("prompt", "key"), [
    ("flamenco guitar in phrygian with handclaps", Key("E", "phrygian")),
    ("a dorian groove on clavinet", Key("D", "dorian")),
    ("something dreamy in lydian", Key("F", "lydian")),
    ("rock vamp in the mixolydian mode", Key("G", "mixolydian")),
])
def test_a_mode_named_without_a_tonic_is_kept_on_its_white_key_tonic(prompt: str, key: Key) -> None:
    spec = understand(prompt)
    assert spec.key == key and spec.sources["key"] is Source.INFERRED
    assert any(f"{key.mode} key was asked without a tonic" in note for note in spec.notes)


@pytest.mark.parametrize(("prompt", "meter"), [
    ("prog rock in 7/4", Meter(7, 4)),
    ("6/8 jig", Meter(6, 8)),
    ("balkan dance in 11/8", Meter(11, 8)),
    ("a waltz for piano", Meter(3, 4)),
    ("a slip jig", Meter(9, 8)),
    ("march in cut time", Meter(2, 2)),
    ("something in six-eight time", Meter(6, 8)),
    ("sixteen bars in eleven-eight", Meter(11, 8)),
    ("a three-four waltz", Meter(3, 4)),
    ("a 12/8 blues", Meter(12, 8)),
])
def test_meter_phrasings(prompt: str, meter: Meter) -> None:
    assert understand(prompt).meter == meter


def test_a_fraction_that_is_no_meter_is_ignored() -> None:
    assert understand("24/7 party house track").meter == Meter(4, 4)


def test_an_impossible_meter_named_as_one_is_an_error() -> None:
    with pytest.raises(SpecError) as error:
        understand("piano in 7/3 time")
    assert error.value.field == "meter" and "over 1, 2, 4, 8, 16, 32" in str(error.value)


@pytest.mark.parametrize(("prompt", "bars"), [
    ("8 bars of house", 8),
    ("eight bars of house", 8),
    ("a 4-bar loop", 4),
    ("16 measures, strings", 16),
    ("a 12-bar blues in E", 12),
    ("sixteen-bar intro", 16),
])
def test_length_in_bars(prompt: str, bars: int) -> None:
    spec = understand(prompt)
    assert spec.bars == bars and spec.sources["bars"] is Source.EXPLICIT


@pytest.mark.parametrize(("prompt", "seconds"), [
    ("30 seconds of ambient at 60 bpm", 30),
    ("thirty seconds of techno at 120 bpm", 30),
    ("a 45s techno loop at 120 bpm", 45),
    ("one minute of lo-fi at 90 bpm", 60),
    ("half a minute of house at 120 bpm", 30),
])
def test_length_in_time_becomes_bars_at_the_tempo(prompt: str, seconds: float) -> None:
    spec = understand(prompt)
    bar_seconds = spec.meter.quarters_per_bar * 60 / spec.tempo_bpm
    assert abs(spec.seconds - seconds) <= bar_seconds / 2 + 1e-9
    assert any("seconds" in note for note in spec.notes)


def test_a_decade_is_not_a_length_in_seconds() -> None:
    spec = understand("80s synth pop, driving bassline, A minor, 8 bars")
    assert spec.bars == 8 and spec.key == Key("A", "minor")
    assert understand("1970s funk").sources["bars"] is Source.DEFAULT


@pytest.mark.parametrize(("prompt", "program"), [
    ("french horns and strings", 60),
    ("Rhodes chords", 4),
    ("upright bass walking line", 32),
    ("trap beat with 808", 38),
    ("female singer over piano", 53),
    ("a tin whistle melody", 78),
    ("fiddle and guitar", 110),
    ("nylon guitar bossa", 24),
    ("Hammond organ", 16),
    ("distorted guitars", 30),
])
def test_instruments_by_name_and_synonym(prompt: str, program: int) -> None:
    assert program in programs(understand(prompt))


@pytest.mark.parametrize("prompt", [
    "funk groove, no drums",
    "rock without drums",
    "drumless hip hop",
    "jazz trio with piano and bass but no drums",
])
def test_no_drums(prompt: str) -> None:
    spec = understand(prompt)
    assert "drums" not in roles(spec) and spec.parts


@pytest.mark.parametrize("prompt", ["funk with guitar, no drums and no bass", "rock, no drums or bass, just organ",
                                    "house without drums or bass"])
def test_no_drums_and_no_bass(prompt: str) -> None:
    spec = understand(prompt)
    assert not roles(spec) & {"drums", "bass"} and spec.parts


@pytest.mark.parametrize("prompt", ["no drums, with piano and bass", "no drums, rhodes and upright bass",
                                    "120 BPM, F# dorian, no drums, piano and bass"])
def test_a_negation_does_not_swallow_what_follows(prompt: str) -> None:
    spec = understand(prompt)
    assert "drums" not in roles(spec) and "bass" in roles(spec) and len(spec.parts) == 2


def test_a_negated_list_closed_by_or() -> None:
    spec = understand("jazz without drums, bass or piano, just sax")
    assert [p.name for p in spec.parts] == ["sax"]


def test_excluding_everything_is_a_clear_error() -> None:
    with pytest.raises(SpecError) as error:
        understand("solo piano, no piano")
    assert error.value.field == "prompt"


@pytest.mark.parametrize(("prompt", "arc"), [
    ("strings starting soft and building to a climax", "crescendo"),
    ("a crescendo for brass", "crescendo"),
    ("piano fading out at the end", "decrescendo"),
    ("a diminuendo, loud to soft", "decrescendo"),
    ("steady house groove", "steady"),
])
def test_dynamics_words(prompt: str, arc: str) -> None:
    assert understand(prompt).arc == arc


@pytest.mark.parametrize(("prompt", "swing"), [
    ("laid back swing", True),
    ("country shuffle", True),
    ("jazz with straight eighths", False),
    ("hip hop with no swing", False),
])
def test_swing(prompt: str, swing: bool) -> None:
    assert understand(prompt).swing is swing


@pytest.mark.parametrize(("prompt", "style"), [
    ("Funky disco groove with strings", "disco"),
    ("Prog rock passage in 5/4 with organ and bass", "rock"),
    ("a 12-bar blues in E", "blues"),
    ("80s synth pop with arpeggiated bass", "synthwave"),
    ("Country shuffle with pedal steel", "country"),
    ("drum and bass with a reese", "drum and bass"),
    ("a D&B track in D minor", "drum and bass"),
    ("jazz waltz in Bb", "jazz"),
    ("soft jazz ballad with brushes", "jazz"),
    ("an argentine tango with bandoneon", "tango"),
])
def test_styles_named_by_keyword(prompt: str, style: str) -> None:
    spec = understand(prompt)
    assert spec.style == style and spec.sources["style"] is Source.INFERRED


@pytest.mark.parametrize(("prompt", "style"), [
    ("a fantasy film battle scene", "cinematic"),
    ("retro handheld console platformer game music", "chiptune"),
    ("a Jamaican dancehall riddim", "reggae"),
    ("Jamaican offbeat organ and deep bass", "reggae"),
])
def test_styles_no_keyword_names_fall_to_the_nearest_by_meaning_and_say_so(prompt: str, style: str) -> None:
    spec = understand(prompt)
    assert spec.style == style
    assert any("nearest by meaning" in note and style in note for note in spec.notes)


@pytest.mark.parametrize("prompt", ["something in C major, 8 bars", "piano piece", "Rhodes and french horns, ♩=100"])
def test_a_prompt_naming_no_style_keeps_the_default(prompt: str) -> None:
    spec = understand(prompt)
    assert spec.sources["style"] is Source.DEFAULT
    assert not any("nearest by meaning" in note for note in spec.notes)


@pytest.mark.parametrize(("prompt", "mood"), [
    ("a cheerful tune on ukulele", "happy"),
    ("melancholic piano", "sad"),
    ("a heartbreaking farewell on cello", "sad"),
    ("music for a haunted house, creeping dread", "tense"),
    ("peaceful morning by the lake", "calm"),
    ("piano in C major", "neutral"),
    ("victory fanfare", "triumphant"),  # heroic, not tragic: a major key
])
def test_moods_by_meaning(prompt: str, mood: str) -> None:
    assert understand(prompt).mood == mood


def test_overrides_win_over_the_text() -> None:
    spec = understand("funk at 100 bpm in E minor, 8 bars", Overrides(tempo_bpm=90, key="D dorian", bars=4))
    assert (spec.tempo_bpm, spec.key, spec.bars) == (90, Key("D", "dorian"), 4)
    assert spec.sources["tempo_bpm"] is Source.EXPLICIT


def test_every_field_has_a_source() -> None:
    spec = understand("Dark techno at 130 BPM in A minor, 16 bars")
    assert set(spec.sources) >= {"tempo_bpm", "key", "meter", "bars", "start_bar", "style", "mood", "arc",
                                 "swing", "seed", "parts"}


def test_energy_by_meaning_orders_prompts_as_a_listener_would() -> None:
    calm = [understand(p).energy for p in ("a soft lullaby", "slow melancholic piano ballad", "peaceful ambient drone")]
    intense = [understand(p).energy for p in ("aggressive thrash metal at full tilt", "hard techno rave",
                                               "epic trailer music building to an explosive climax")]
    assert all(0.0 <= e <= 1.0 for e in calm + intense)
    assert max(calm) < 0.4 < 0.6 < min(intense)
    assert understand("a soft lullaby").sources["energy"] is Source.INFERRED


def test_an_energy_word_outweighs_what_the_genre_and_instruments_suggest() -> None:
    """A solo piano sits near the calm sentences, but an upbeat or lively one is not calm; a soft
    techno is not a rave. Words of both sides leave it to the whole prompt's meaning."""
    for prompt in ("Upbeat ragtime piano in 7/4", "a lively solo piano waltz", "an energetic harp piece"):
        assert understand(prompt).energy >= 0.7, prompt
    for prompt in ("soft techno for late nights", "a gentle drum and bass roller", "mellow punk rock"):
        assert understand(prompt).energy <= 0.3, prompt
    assert understand("ragtime piano").energy < 0.4  # no energy word: the meaning of the whole prompt


def test_a_chorus_is_a_section_not_a_choir() -> None:
    assert "choir" not in {part.name for part in understand("quiet verse then loud chorus, rock").parts}
    assert "choir" in {part.name for part in understand("a choir over organ").parts}
