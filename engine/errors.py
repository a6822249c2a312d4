"""The one error type for bad requests: it names the field and what is accepted."""
from __future__ import annotations


class SpecError(ValueError):
    """A request field is out of range or malformed.

    ``field`` is the request field's name, so the server can answer INVALID_ARGUMENT
    and the CLI can point at the flag.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Cancelled(RuntimeError):
    """The caller went away (cancelled, or its deadline passed); the work was stopped."""
