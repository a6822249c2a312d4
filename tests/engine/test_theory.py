import pytest

from engine.errors import SpecError
from engine.music.theory import Key, Meter, parse_key, parse_meter


@pytest.mark.parametrize(("text", "key"), [
    ("F# minor", Key("F#", "minor")), ("F#m", Key("F#", "minor")), ("Bb", Key("Bb", "major")),
    ("C sharp minor", Key("C#", "minor")), ("E-flat major", Key("Eb", "major")),
    ("D dorian", Key("D", "dorian")), ("a", Key("A", "minor")), ("B♭ mixolydian", Key("Bb", "mixolydian")),
])
def test_parse_key_reads_the_ways_people_write_keys(text, key):
    assert parse_key(text) == key


@pytest.mark.parametrize("text", ["H minor", "C bluesy", "", "minor"])
def test_parse_key_rejects_non_keys_and_lists_what_is_accepted(text):
    with pytest.raises(SpecError, match="accepted") as caught:
        parse_key(text)
    assert caught.value.field == "key"


def test_scale_and_key_signature():
    assert parse_key("E minor").scale_pcs() == (4, 6, 7, 9, 11, 0, 2)
    assert parse_key("Eb major").fifths() == -3
    assert parse_key("F# minor").fifths() == 3
    assert parse_key("D dorian").fifths() == 0


@pytest.mark.parametrize(("text", "quarters"), [("4/4", 4.0), ("7/8", 3.5), ("6/8", 3.0), ("11/8", 5.5)])
def test_meter_length_in_quarters(text, quarters):
    assert parse_meter(text).quarters_per_bar == quarters


@pytest.mark.parametrize("text", ["7/5", "0/4", "33/4", "4/64", "x/4"])
def test_impossible_meters_are_refused(text):
    with pytest.raises(SpecError, match="meter"):
        parse_meter(text)


def test_meter_str_round_trips():
    assert str(Meter(7, 8)) == "7/8" and parse_meter(str(Meter(7, 8))) == Meter(7, 8)
