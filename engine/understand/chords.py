"""Chords named in a prompt (or given with ``--chords``) into the spec, with a note saying so.

In a prompt a progression is a run of at least two chord tokens (engine/music/chords.py: symbols
or Roman numerals) separated by spaces, dashes, commas or bars (``|``), so a lone "A" or "I" in a
sentence is never read as a chord. A progression of chord symbols with no key in the prompt
decides the key: the major or minor key whose scale holds most of the chords' tones, its tonic
preferably the root of the first chord.
"""
from __future__ import annotations

from dataclasses import replace

from engine.music.chords import ROMAN_RE, SPLIT, key_of, parse_progression, parse_symbol, symbol_name


def find_progression(prompt: str) -> tuple[list[str], str] | None:
    """The first run of two or more chord tokens in the prompt and its kind (``symbols`` or ``roman``)."""
    tokens = [t.strip(".;:()\"'") for t in SPLIT.split(prompt) if t.strip("-")]
    for kind, test in (("symbols", lambda t: parse_symbol(t) is not None),
                       ("roman", lambda t: ROMAN_RE.fullmatch(t) is not None)):
        run: list[str] = []
        for token in [*tokens, ""]:
            if token and test(token):
                run.append(token)
                continue
            if len(run) >= 2 and not (kind == "roman" and all(t == "I" for t in run)):
                return run, kind
            run = []
    return None


def apply_chords(spec, given: str | None):
    """The spec with its chord progression: ``given`` (``--chords``) or one named in the prompt.

    Sets ``spec.chords`` (the chord names, one per bar, repeated over the clip by compose), its
    source, the key when nothing else decided it, and a note saying what was understood.
    """
    from engine.music.spec import Source

    if given is not None:
        text, source = given, Source.EXPLICIT
    else:
        found = find_progression(spec.prompt)
        if found is None:
            return spec
        text, source = " ".join(found[0]), Source.EXPLICIT
    chords = parse_progression(text, spec.key)
    notes, sources, key = list(spec.notes), dict(spec.sources), spec.key
    symbols = all(parse_symbol(c.name) for c in chords)
    if symbols and sources.get("key") in (Source.DEFAULT, Source.INFERRED):
        key = key_of(chords)
        sources["key"] = Source.INFERRED
        notes.append(f"key {key} inferred from the chords")
    elif not symbols:  # Roman numerals are in the key the spec already has
        chords = parse_progression(text, key)
    sources["chords"] = source
    outside = [c.name for c in chords if not set(c.tones) <= set(key.scale_pcs())]
    spelled = "" if symbols else f" ({' '.join(symbol_name(c, key) for c in chords)})"
    repeat = f", repeated over {spec.bars} bars" if len(chords) < spec.bars else ""
    cut = f"; the clip's {spec.bars} bars hold the first {spec.bars}" if len(chords) > spec.bars else ""
    notes.append(f"chords {' '.join(c.name for c in chords)}{spelled}, one per bar{repeat}{cut}"
                 + (f" ({', '.join(outside)} outside {key})" if outside else ""))
    return replace(spec, key=key, chords=[c.name for c in chords], sources=sources, notes=notes)


