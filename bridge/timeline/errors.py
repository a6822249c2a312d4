"""The one base class of every timeline error, so the CLI can catch them without importing the formats.

A subclass that is also a ValueError is bad input (exit 2); others are failures (exit 1).
"""
from __future__ import annotations

from engine.errors import EXIT_FAILURE, EXIT_USAGE, CadenzaError


class TimelineError(CadenzaError):
    """Something stopped a clip from being placed on a timeline; the message says what and what is accepted."""

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        """A wrong input (the ValueError kinds) is a usage error; a tool that failed is not."""
        return EXIT_USAGE if isinstance(self, ValueError) else EXIT_FAILURE
