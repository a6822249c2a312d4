"""The one error type for bad requests: it names the field and what is accepted."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar


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


# The should-stop check of the request this thread serves. The server sets it around each request
# (the caller left, passed its deadline, or the engine is shutting down); long work polls it with
# ``check_stop`` at its natural steps (bars decoded, parts written), so a request nobody waits for
# any more ends instead of holding a worker.
_should_stop: ContextVar[Callable[[], bool] | None] = ContextVar("cadenza_should_stop", default=None)


@contextmanager
def stop_when(should_stop: Callable[[], bool]) -> Iterator[None]:
    """Make ``should_stop`` the check ``check_stop`` polls for the work done inside the block."""
    token = _should_stop.set(should_stop)
    try:
        yield
    finally:
        _should_stop.reset(token)


def check_stop(doing: str) -> None:
    """Raise Cancelled (naming ``doing``) if the request this work is for has been given up."""
    should_stop = _should_stop.get()
    if should_stop is not None and should_stop():
        raise Cancelled(f"stopped while {doing}")
