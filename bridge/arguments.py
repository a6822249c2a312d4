"""Argument types for the CLI that check a number's range where it is typed, so a value the
request could not even carry (a negative seed, 10**20 bars) is a one-line usage error, not a traceback."""
from __future__ import annotations

import argparse
from collections.abc import Callable

from engine.config import BARS_MAX, BARS_MIN, SEED_MAX


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer from ``low`` to ``high``, else an error naming the range."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, "
                                             f"got {text[:40]!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}-{high}, got {text[:40]}")
        return value

    parse.__name__ = "integer"
    return parse


# `--sync` and `--midi-api` of `cadenza clock`, `bridge` and `jam`: here, so building the parser imports no
# live or MIDI code.
SYNC_SOURCES = ("midi-clock", "link", "link-start-stop")
MIDI_APIS = ("jack", "jack-rtmidi", "alsa", "coremidi")

seed = int_in(0, SEED_MAX)
bars = int_in(BARS_MIN, BARS_MAX)
