"""Malformed MIDI for fuzzing: a real clip from the engine, mutated by cut-and-insert edits."""
from __future__ import annotations

import functools

from hypothesis import strategies as st


@functools.cache
def real_clip() -> bytes:
    """A short real clip (2 bars of a jazz trio), made once per process."""
    from engine.compose.pipeline import compose
    from engine.music.midi import score_to_smf
    from engine.understand.prompt import Overrides, understand

    return score_to_smf(compose(understand("jazz trio with piano, bass and drums", Overrides(seed=2, bars=2))))


def mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """``data`` with each (position, bytes to cut, bytes to insert) edit applied in turn."""
    out = bytearray(data)
    for position, cut, insert in edits:
        at = position % max(1, len(out))
        out[at:at + cut] = insert
    return bytes(out)


def mutated_clips(max_edits: int = 12) -> st.SearchStrategy[bytes]:
    """Real clips with 1..max_edits random edits."""
    edits = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 16), st.binary(max_size=8)),
                     min_size=1, max_size=max_edits)
    return edits.map(lambda e: mutate(real_clip(), e))
