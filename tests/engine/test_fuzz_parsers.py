"""Fuzzing the prompt parser and the MIDI file reader: no crash, no hang, every rejection a
SpecError naming the field.

CI runs 10,000 prompts through the explicit-attribute parsers (tempo, key, meter, length,
negations), 500 through the whole of `understand` (which also runs the sentence-embedding
model, about 50 ms a prompt on a loaded 2-core machine), 3,000 MIDI files and 10,000 runs of
MIDI events through the bridge's byte parser (clock follower and capture);
CADENZA_FUZZ_EXAMPLES sets all three, and `tests/benchmarks/bench_fuzz.py` runs 10^6."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import SpecError
from engine.music.midi import score_to_smf, smf_to_score
from engine.understand import prompt as understanding
from engine.understand.prompt import Overrides, understand
from tests.engine.midi_mutations import mutated_clips

PARSER_EXAMPLES = int(os.environ.get("CADENZA_FUZZ_EXAMPLES", "10000"))
PROMPT_EXAMPLES = int(os.environ.get("CADENZA_FUZZ_EXAMPLES", "500"))
MIDI_EXAMPLES = int(os.environ.get("CADENZA_FUZZ_EXAMPLES", "3000"))


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)

vocabulary = st.sampled_from([
    "in", "a", "A", "minor", "F#", "Bb", "♭", "♯", "m", "dorian", "7/8", "4/4", "3/0", "bars", "bar", "bpm",
    "tempo", "♩=", "=", "120", "0", "99999999999999999999", "seconds", "no", "without", "drums", "bass",
    "piano", "string quartet", "solo", "swing", "crescendo", "fading out", "waltz", "jig", "key of", "sharp",
    "flat", ",", ".", "-", "twelve", "thirty-two", "slow", "presto", "\x00", "\u202e", "🎹",
])
prompts = st.one_of(st.text(min_size=1, max_size=300), st.lists(vocabulary, min_size=1, max_size=25).map(" ".join))


@fuzz(PARSER_EXAMPLES)
@given(prompt=prompts)
def test_fuzz_explicit_attribute_parsers_never_crash(prompt: str) -> None:
    text = prompt.lower()
    for parse, field in ((lambda: understanding._parse_tempo(text), "tempo_bpm"),
                         (lambda: understanding._parse_key(text, prompt), "key"),
                         (lambda: understanding._parse_meter(text), "meter"),
                         (lambda: understanding._parse_length(text), "bars"),
                         (lambda: understanding._excluded(text), None),
                         (lambda: understanding.fuzzy_text(text), None)):
        try:
            parse()
        except SpecError as error:
            assert error.field == field, error


@fuzz(PROMPT_EXAMPLES)
@given(prompt=prompts)
def test_fuzz_prompt_parser_never_crashes(prompt: str) -> None:
    try:
        spec = understand(prompt, Overrides(seed=1))
    except SpecError as error:
        assert error.field in {"prompt", "tempo_bpm", "key", "meter", "bars"}, error
        return
    assert 20 <= spec.tempo_bpm <= 400 and 1 <= spec.bars <= 256 and spec.parts


midi_bytes = st.one_of(st.binary(max_size=400), mutated_clips())


@fuzz(MIDI_EXAMPLES)
@given(data=midi_bytes)
def test_fuzz_midi_file_reader_never_crashes(data: bytes) -> None:
    try:
        score = smf_to_score(data)
    except SpecError as error:
        assert error.field == "midi"
        return
    score_to_smf(score)  # whatever parsed writes back


BYTE_EXAMPLES = int(os.environ.get("CADENZA_FUZZ_EXAMPLES", "10000"))
midi_events = st.lists(st.tuples(st.floats(0.0, 0.05), st.one_of(
    st.binary(min_size=1, max_size=40),
    st.lists(st.sampled_from([0xF8, 0xFA, 0xFB, 0xFC, 0xF2, 0xF0, 0xF7, 0xF6, 0x90, 0x80, 0x40, 0x00, 0x7F]),
             min_size=1, max_size=12).map(bytes),
)), max_size=60)


@fuzz(BYTE_EXAMPLES)
@given(events=midi_events)
def test_fuzz_midi_byte_parser_never_crashes(events: list[tuple[float, bytes]]) -> None:
    """The bridge's MIDI input (clock follower, capture) under arbitrary events: no exception, and
    the state stays sane (a position never negative, a tempo positive or unknown)."""
    from bridge.capture import Capture
    from bridge.live import ArmCapture, LiveSession

    session = LiveSession()
    session.request(ArmCapture(Capture(), bar=1, bars=1))
    now = 0.0
    for gap, data in events:
        now += gap
        session.process([(now, data)], now, now + 0.001)
    state = session.state
    assert state.position >= 0 and (state.tempo_bpm is None or state.tempo_bpm > 0)
