"""Prompt understanding beyond the dev prompts (issue 16): one test per kind of miss seen on prompts
written the way people write. The sentence-embedding model is real (loaded once, offline)."""
from __future__ import annotations

import pretty_midi
import pytest

from engine.catalog import instruments
from engine.music.spec import Source
from engine.understand.prompt import Overrides, understand


def parts(prompt: str) -> dict[str, str]:
    """Part name -> role."""
    return {p.name: p.role for p in understand(prompt, Overrides(seed=1)).parts}


# ---- numbers tied to their unit and context


@pytest.mark.parametrize("prompt", [
    "Trap beat with booming 808s and crisp hi-hats, 140 bpm",
    "an 808 bassline under a TR-909 house groove",
    "acid techno with a 303 line",
    "a 12-string guitar ballad",
    "90s hip hop with dusty keys",
])
def test_numbers_that_name_instruments_or_decades_are_no_length(prompt: str) -> None:
    spec = understand(prompt)
    assert spec.sources["bars"] is Source.DEFAULT and spec.bars == 8
    assert not any("seconds" in note for note in spec.notes)


def test_808s_are_the_drum_machine_and_its_bass() -> None:
    spec = understand("Trap beat with booming 808s, 140 bpm")
    assert spec.tempo_bpm == 140
    assert any(p.program == 38 and p.role == "bass" for p in spec.parts)


@pytest.mark.parametrize(("prompt", "bpm"), [
    ("Liquid drum and bass, 172, Rhodes and strings", 172),
    ("house, 124", 124),
    ("techno (132), dark", 132),
])
def test_a_bare_number_alone_in_its_clause_is_the_tempo(prompt: str, bpm: float) -> None:
    spec = understand(prompt)
    assert spec.tempo_bpm == bpm and spec.sources["tempo_bpm"] is Source.EXPLICIT


@pytest.mark.parametrize("prompt", ["a trio, 3 players", "4 horns and 2 guitars", "track 2 of 12"])
def test_counts_are_not_tempi(prompt: str) -> None:
    assert understand(prompt).sources["tempo_bpm"] is not Source.EXPLICIT


# ---- the instrument vocabulary: all of General MIDI, its percussion map, common names


def test_every_general_midi_program_has_an_instrument_with_a_name() -> None:
    pitched = {i.program for i in instruments.catalogue() if not i.is_drum}
    assert pitched == set(range(128))
    for program in range(128):
        gm = pretty_midi.program_to_instrument_name(program)
        entry = next(i for i in instruments.catalogue() if i.program == program and not i.is_drum and i.words)
        assert entry.words, gm


@pytest.mark.parametrize(("word", "program"), [
    ("taiko", 116), ("steel drums", 114), ("koto", 107), ("kalimba", 108), ("bagpipes", 109), ("shamisen", 106),
    ("music box", 10), ("tubular bells", 14), ("ocarina", 79), ("shakuhachi", 77), ("baritone sax", 67),
    ("muted trumpet", 59), ("synth brass", 62), ("orchestra hit", 55), ("harmonium", 20), ("bandoneon", 23),
    ("contrabass section", 43), ("tremolo strings", 44), ("synth strings", 50), ("calliope", 82), ("halo pad", 94),
    ("piccolo", 72), ("english horn", 69), ("soprano sax", 64), ("pick bass", 34), ("dulcimer", 15),
])
def test_instruments_of_every_family_are_named(word: str, program: int) -> None:
    spec = understand(f"a tune with {word}")
    assert program in {p.program for p in spec.parts}, [p.name for p in spec.parts]


@pytest.mark.parametrize(("word", "keys"), [
    ("congas", {62, 63, 64}), ("bongos", {60, 61}), ("timbales", {65, 66}), ("clave", {75}), ("cowbell", {56}),
    ("shaker", {69, 70}), ("tambourine", {54}), ("hand claps", {39}), ("triangle", {80, 81}), ("guiro", {73, 74}),
])
def test_percussion_instruments_are_parts_of_their_own_on_their_keys(word: str, keys: set[int]) -> None:
    spec = understand(f"a groove with {word}")
    percussion = [p for p in spec.parts if p.is_drum and instruments.percussion(p.instrument)]
    assert percussion, [p.name for p in spec.parts]
    assert set(instruments.percussion(percussion[0].instrument).keys) == keys
    assert any(p.name == "drums" for p in spec.parts), "the kit still plays beside them"


@pytest.mark.parametrize("word", ["mandolin", "bodhran", "tabla", "gong", "oud", "metallophone"])
def test_an_instrument_general_midi_lacks_is_played_by_a_stand_in_and_the_spec_says_so(word: str) -> None:
    spec = understand(f"a piece with {word}")
    assert any(note.startswith(p.name + ":") for p in spec.parts for note in spec.notes), spec.notes


# ---- named instruments join the style's parts


def test_a_named_bassline_keeps_the_synths_of_80s_synth_pop() -> None:
    named = parts("80s synth pop with a driving bassline")
    # "bassline" names the bass family, and synth pop's own bass is a synth bass: that plays it, once
    assert named.get("synth_bass") == "bass" and "pad" in named and "melody" in named.values()
    assert "bass" not in named


def test_a_triangle_bass_is_the_chiptune_bass_and_not_a_percussion_triangle() -> None:
    named = parts("8-bit chiptune with arpeggios and a triangle bass")
    assert named.get("synth_bass") == "bass" and "triangle" not in named
    assert parts("chiptune with a triangle wave bass and a triangle").get("triangle") == "drums"


def test_a_family_word_plays_the_styles_own_sound_and_a_specific_word_its_own() -> None:
    assert parts("Metal with 7-string guitars and double kick, 200 bpm").get("distortion_guitar")
    assert parts("Jazz trio with bass and brushes").get("upright_bass") == "bass"
    assert parts("rock song with a clean electric guitar").get("guitar")
    assert "overdrive_guitar" in parts("A really fast punk song with overdriven guitars")


def test_a_stand_in_part_is_named_after_the_instrument_asked_for() -> None:
    named = parts("Djembe circle with a kora")
    assert "djembe" in named and "kora" in named
    assert "melodica" in parts("Roots reggae with a melodica melody")


def test_plural_and_hyphenated_instrument_words_are_read() -> None:
    assert "piano" in parts("Two pianos and a cello, tender, in A flat")
    assert "bass_lead" in parts("Vocal synth lead with a bass-and-lead patch")


def test_number_words_and_between_ranges_give_the_tempo() -> None:
    assert understand("reggae one drop at ninety beats per minute", Overrides(seed=0)).tempo_bpm == 90
    assert understand("funk between 100 and 108 bpm", Overrides(seed=0)).tempo_bpm == 104
    assert understand("a slow-ish lullaby on music box", Overrides(seed=0)).tempo_bpm <= 90


def test_a_word_that_sounds_like_seconds_is_not_a_length() -> None:
    spec = understand("Black-as-night cinematic drone with a metallic pad", Overrides(seed=0))
    assert spec.bars == 8 and not any("seconds" in note for note in spec.notes)


def test_a_refused_style_word_does_not_choose_the_style() -> None:
    spec = understand("Straight eighths rock, no swing at all", Overrides(seed=0))
    assert spec.style == "rock" and spec.swing is False


def test_a_trailer_with_taiko_and_brass_keeps_its_strings() -> None:
    named = parts("Epic trailer cue with taiko and brass")
    assert {"taiko", "brass", "strings", "drums"} <= set(named)


@pytest.mark.parametrize(("prompt", "expected"), [
    ("Only piano and cello: a sad waltz in G minor", {"piano", "cello"}),
    ("solo oboe in a jazz style", {"oboe"}),
    ("just congas", {"congas"}),
    ("Harp and flute duet, peaceful", {"harp", "flute"}),
])
def test_only_solo_just_and_duet_keep_to_the_instruments_named(prompt: str, expected: set[str]) -> None:
    assert set(parts(prompt)) == expected


def test_a_trio_fills_only_up_to_three_players() -> None:
    assert len(parts("jazz trio with piano")) == 3


def test_a_song_style_always_has_a_melody() -> None:
    assert "melody" in parts("Ukulele sing-along for kids in G").values()
    assert "melody" in parts("country song with banjo and acoustic guitar").values()


def test_a_sparse_horror_cue_gets_no_drum_kit() -> None:
    assert "drums" not in parts("Tense horror cue, sparse and dissonant, low cello drones").values()


def test_minimal_techno_is_a_genre_not_a_sparse_texture() -> None:
    assert {"drums", "bass"} <= set(parts("Minimal techno, 128 bpm, hypnotic 303 acid line").values())


# ---- tempo and dynamics words by meaning


@pytest.mark.parametrize(("prompt", "low", "high"), [
    ("Really fast punk rock", 160, 400),
    ("super fast breakbeat", 160, 400),
    ("extremely slow doom", 20, 62),
    ("fairly fast folk tune", 120, 135),
    ("at a snail's pace", 20, 60),
    ("breakneck bebop", 175, 400),
    ("fast drum and bass", 170, 400),
    ("Bluegrass breakdown, quick tempo", 125, 180),
])
def test_tempo_words_with_intensifiers_and_synonyms(prompt: str, low: float, high: float) -> None:
    assert low <= understand(prompt).tempo_bpm <= high


@pytest.mark.parametrize(("prompt", "arc"), [
    ("a piece that slowly grows from a whisper to a full orchestra", "crescendo"),
    ("Soft and slow at first, a gentle folk song", "crescendo"),
    ("starts loud then settles", "decrescendo"),
    ("warm lo-fi piano loop that builds then fades", "swell"),
    ("quiet piano piece that fades away to nothing", "decrescendo"),
    ("strings that get bigger and bigger", "crescendo"),
    ("the groove dies out at the end", "decrescendo"),
    ("a tune with no fade out", "steady"),
    ("aggressive drum and bass that drops out halfway and comes back", "dip"),
    ("techno with a breakdown in the middle", "dip"),
    ("fades out then builds back up", "dip"),
    ("gentle piano that swells in the middle then settles", "swell"),
    ("bluegrass banjo breakdown, fast", "steady"),  # a breakdown tune, not a dynamics breakdown
])
def test_arcs_by_word_order_and_meaning(prompt: str, arc: str) -> None:
    assert understand(prompt).arc == arc


# ---- styles outside the catalogue, and the ones added


@pytest.mark.parametrize(("prompt", "style"), [
    ("Polka for accordion and tuba", "polka"), ("Balinese gamelan", "gamelan"), ("Eurodance anthem", "eurodance"),
    ("uplifting trance", "eurodance"), ("flamenco guitar", "flamenco"), ("reggaeton dembow beat", "reggaeton"),
    ("dubstep with wobble bass", "dubstep"), ("a military march", "march"), ("afrobeat groove", "afrobeat"),
    ("a raga on sitar", "indian"), ("Argentine tango", "tango"),
    ("smooth R&B slow jam with electric piano", "soul"), ("neo-soul groove with rhodes", "soul"),
    ("motown soul", "soul"), ("bouncy ska with upstroke guitar and horns", "ska"), ("two-tone ska punk", "ska"),
])
def test_styles_prompts_ask_for_often_are_in_the_catalogue(prompt: str, style: str) -> None:
    assert understand(prompt).style == style


@pytest.mark.parametrize("prompt", ["a piece for kazoo", "something nice", "vaporwave mall music"])
def test_a_style_not_in_the_catalogue_is_said_with_the_nearest_and_its_similarity(prompt: str) -> None:
    spec = understand(prompt)
    assert spec.sources["style"] is not Source.EXPLICIT
    assert any("nearest" in note and "similarity" in note for note in spec.notes), spec.notes


def test_a_jazz_trio_with_no_instrument_named_is_three_parts() -> None:
    assert sorted(parts("a jazz trio that gets quieter and quieter")) == ["drums", "piano", "upright_bass"]


@pytest.mark.parametrize(("prompt", "bpm"), [("Techno at one hundred and thirty bpm", 130),
                                             ("a waltz at one hundred twenty beats per minute", 120),
                                             ("house, ninety-six bpm", 96)])
def test_spelled_out_compound_tempi_are_read(prompt: str, bpm: float) -> None:
    assert understand(prompt, Overrides(seed=0)).tempo_bpm == bpm


def test_a_solo_over_a_band_keeps_the_band_and_the_soloist_plays_the_tune() -> None:
    spec = understand("trombone solo over a slow blues")
    roles = {part.name: part.role for part in spec.parts}
    assert roles["trombone"] == "melody"
    assert "bass" in roles.values() and "drums" in roles.values(), roles


def test_a_solo_bass_instrument_alone_plays_a_tune_not_a_bass_line() -> None:
    assert [(p.name, p.role) for p in understand("an unaccompanied trombone solo").parts] == [("trombone", "melody")]


@pytest.mark.parametrize(("prompt", "lead"), [
    ("blues with harmonica lead", "harmonica"),
    ("funk with a sax lead", "sax"),
    ("jazz with trumpet lead and piano", "trumpet"),
    ("pop with a piano lead and synth bass", "piano"),
])
def test_a_lead_beside_an_instrument_makes_it_the_tune_and_adds_no_synth(prompt: str, lead: str) -> None:
    roles = parts(prompt)
    assert roles[lead] == "melody" and "saw_lead" not in roles, roles
    assert [name for name, role in roles.items() if role == "melody"] == [lead], roles


def test_a_lead_on_its_own_is_still_the_styles_lead_sound() -> None:
    assert parts("trance with a lead")["saw_lead"] == "melody"


@pytest.mark.parametrize(("prompt", "style"), [
    ("house, four on the floor", "house"),
    ("disco with four on the floor, strings and slap bass", "disco"),
])
def test_a_genre_named_beside_a_groove_shared_by_several_genres_is_the_style(prompt: str, style: str) -> None:
    assert understand(prompt).style == style


@pytest.mark.parametrize(("prompt", "key"), [
    ("heavy metal riff in drop D, double kick, fast", "D minor"),  # a major-leaning mood (energetic) stays minor
    ("drop-b metalcore", "B minor"),
    ("tango with bandoneon", "A minor"),
    ("metal in E major", "E major"),  # a key said always wins
    ("pop in drop D", "D major"),  # a drop tuning names the tonic; the mode is the style's or the default
])
def test_a_style_of_a_minor_idiom_and_a_drop_tuning_choose_the_key(prompt: str, key: str) -> None:
    assert str(understand(prompt).key) == key


@pytest.mark.parametrize(("prompt", "soloist"), [
    ("jazzy bossa at 140 with a flute solo", "flute"),
    ("rock with a guitar solo", "guitar"),
    ("a vibes solo over swing", "vibes"),
])
def test_a_solo_inside_a_band_keeps_the_band_and_the_soloist_plays_the_tune(prompt: str, soloist: str) -> None:
    roles = parts(prompt)
    assert roles[soloist] == "melody" and {"bass", "drums"} <= set(roles.values()), roles


def test_a_solo_piano_still_plays_both_hands() -> None:
    assert parts("piano solo, romantic") == {"piano": "keys"}


def test_a_singular_steel_drum_is_the_steel_pan() -> None:
    assert "steel_drums" in parts("steel drum calypso in F")


@pytest.mark.parametrize(("prompt", "vibraphone"), [
    ("sunset beach vibes, tropical house", False),
    ("chill lofi vibes", False),
    ("piano, vibes and bass", True),
    ("jazz quartet with vibes, bass and drums", True),
])
def test_vibes_after_a_describing_word_are_a_feel_not_a_vibraphone(prompt: str, vibraphone: bool) -> None:
    assert ("vibes" in parts(prompt)) is vibraphone


def test_a_named_style_plays_as_lively_as_the_prompt_within_its_range() -> None:
    calm, lively = (understand(p) for p in ("a romantic candlelit dinner jazz piano",
                                            "energetic, driving, high-energy jazz"))
    assert 110 <= calm.tempo_bpm < 165 < lively.tempo_bpm <= 220, (calm.tempo_bpm, lively.tempo_bpm)  # 110-220
    plain = understand("disco with strings and slap bass")
    assert plain.sources["energy"] is Source.DEFAULT and plain.tempo_bpm == 120  # the middle of disco's 112-128


@pytest.mark.parametrize(("prompt", "expected"), [
    ("starts loud and ends in a whisper, strings", {"strings"}),
    ("medieval dance with lute and recorder", {"lute", "recorder"}),
    ("a moody piece in f sharp minor for clarinet and strings that gets louder towards the end",
     {"clarinet", "strings"}),
])
def test_with_no_style_named_the_instruments_named_are_the_ensemble(prompt: str, expected: set[str]) -> None:
    assert set(parts(prompt)) == expected


def test_with_no_style_named_a_groove_still_brings_the_rhythm_section() -> None:
    assert {"cowbell", "drums", "bass"} <= set(parts("a groove with cowbell"))


@pytest.mark.parametrize(("prompt", "kit"), [
    ("Bossa nova with nylon guitar, soft brushes and upright bass", 40),
    ("A lounge jazz trio: piano, upright bass and brushed drums", 40),
    ("jazz trio", 0),
])
def test_brushes_ask_for_the_brush_kit(prompt: str, kit: int) -> None:
    drums = [p for p in understand(prompt).parts if p.name == "drums"]
    assert [p.program for p in drums] == [kit]
