"""The one base class of every timeline error, so the CLI can catch them without importing the formats.

A subclass that is also a ValueError is bad input (exit 2); others are failures (exit 1).
"""
from __future__ import annotations


class TimelineError(Exception):
    """Something stopped a clip from being placed on a timeline; the message says what and what is accepted."""
