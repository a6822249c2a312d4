"""The paraphrase set (tests/engine/data/paraphrase_prompts.jsonl, issue 16): prompts written the way
people write, every attribute said many ways, numbers beside units that are neither tempo nor length, and
instruments of every General MIDI family. `cadenza eval --prompts` judges the clips; here the set's
shape is checked, and what `understand` makes of it is held to 0.98 of its expectations (the spec's
fields; the eval's figure comes from the MIDI)."""
from __future__ import annotations

import re
from pathlib import Path

import pretty_midi

from engine.catalog import instruments
from engine.evaluation.evaluate import ENERGY_BOUNDS, _expected_key, _tokens, load_prompts
from engine.understand.prompt import Overrides, understand

SET = Path(__file__).parent / "data" / "paraphrase_prompts.jsonl"
MIN_PROMPTS, MIN_WAYS, MIN_ACCURACY = 200, 5, 0.98
GM_FAMILIES = 16
# A number beside a unit that is neither tempo nor length ("808s", "1970s", "2 guitars", "agent 47").
_NUMBER_RE = re.compile(r"\d+")
_TEMPO_OR_LENGTH_RE = re.compile(r"^\s*(?:bpm|beats|bars?|measures?|seconds?|s\b|minutes?)|^/\d")

CASES = load_prompts(SET)


def test_the_set_has_200_prompts_and_says_every_attribute_five_ways() -> None:
    assert len(CASES) >= MIN_PROMPTS and len({c.prompt for c in CASES}) == len(CASES)
    ways = {
        "tempo": [c for c in CASES if {"tempo_bpm", "tempo_min", "tempo_max"} & set(c.expect)],
        **{name: [c for c in CASES if name in c.expect] for name in
           ("key", "meter", "bars", "genre", "mood", "instruments", "roles_absent")},
        **{f"energy {v}": [c for c in CASES if c.expect.get("energy") == v] for v in ("low", "high")},
        **{f"arc {v}": [c for c in CASES if c.expect.get("arc") == v] for v in ("crescendo", "decrescendo")},
        **{f"mood {v}": [c for c in CASES if c.expect.get("mood") == v] for v in
           ("happy", "sad", "calm", "tense", "dark", "energetic", "dramatic", "triumphant")},
    }
    few = {name: len(cases) for name, cases in ways.items() if len(cases) < MIN_WAYS}
    assert not few, f"said fewer than {MIN_WAYS} ways: {few}"


def test_numbers_that_are_neither_tempo_nor_length_are_in_the_set() -> None:
    other = [c.prompt for c in CASES if any(not _TEMPO_OR_LENGTH_RE.match(c.prompt[m.end():])
                                            for m in _NUMBER_RE.finditer(c.prompt))]
    assert len(other) >= 20, other


def _programs(word: str) -> set[int]:
    """General MIDI programs a word of the set names: by pretty_midi's names, else by the catalogue."""
    found = {p for p in range(128) if _tokens(word) <= _tokens(pretty_midi.program_to_instrument_name(p))}
    if not found and word in instruments.by_word():
        instrument = instruments.lookup(word)
        if not instrument.is_drum:
            found = {instrument.program}
    return found


def test_instruments_of_every_general_midi_family_are_named() -> None:
    families = {p // 8 for c in CASES for word in c.expect.get("instruments", []) for p in _programs(word)}
    missing = sorted(set(range(GM_FAMILIES)) - families)
    assert not missing, f"no instrument named from GM families {missing}"


def spec_checks(expect: dict, spec) -> list[tuple[str, bool]]:
    """The set's expectations that the spec alone answers (the eval judges them on the clip)."""
    checks = []
    if "tempo_bpm" in expect:
        checks.append(("tempo", abs(spec.tempo_bpm - expect["tempo_bpm"]) <= 0.5))
    if "tempo_min" in expect:
        checks.append(("tempo", spec.tempo_bpm >= expect["tempo_min"]))
    if "tempo_max" in expect:
        checks.append(("tempo", spec.tempo_bpm <= expect["tempo_max"]))
    if "key" in expect:
        third = "minor" if (spec.key.scale_pcs()[2] - spec.key.tonic_pc) % 12 == 3 else "major"
        checks.append(("key", _expected_key(expect["key"]) == (spec.key.tonic_pc, third)))
    if "meter" in expect:
        checks.append(("meter", f"{spec.meter.numerator}/{spec.meter.denominator}" == expect["meter"]))
    for name, field in (("bars", "bars"), ("genre", "style"), ("mood", "mood"), ("arc", "arc"), ("swing", "swing")):
        if name in expect:
            checks.append((name, getattr(spec, field) == expect[name]))
    if "energy" in expect:
        checks.append(("energy", spec.energy < ENERGY_BOUNDS[0] if expect["energy"] == "low"
                       else spec.energy > ENERGY_BOUNDS[1]))
    names = [("drums" if p.is_drum else pretty_midi.program_to_instrument_name(p.program), p.name) for p in spec.parts]
    for word in expect.get("instruments", []):
        checks.append(("instruments", any(_tokens(word) <= _tokens(gm) or _tokens(word) <= _tokens(name)
                                          for gm, name in names)))
    roles = {str(p.role) for p in spec.parts} | {"drums" for p in spec.parts if p.is_drum}
    checks += [("roles", role in roles) for role in expect.get("roles", [])]
    checks += [("roles_absent", role not in roles) for role in expect.get("roles_absent", [])]
    return checks


def test_understanding_meets_98_percent_of_the_sets_expectations() -> None:
    missed, total = [], 0
    for case in CASES:
        checks = spec_checks(case.expect, understand(case.prompt, Overrides(seed=0)))
        total += len(checks)
        missed += [f"{case.prompt!r}: {name}" for name, ok in checks if not ok]
    accuracy = 1 - len(missed) / total
    print(f"paraphrase set, understanding: {total - len(missed)}/{total} = {accuracy:.3f}")
    assert accuracy >= MIN_ACCURACY, missed
