"""The one exception hierarchy: every error Cadenza raises on purpose says what went wrong, and
carries the gRPC status the engine answers with and the exit code the CLI ends with.

The server (engine/serving/server.py) and the CLI (bridge/cli.py) map errors in one place each,
by these two attributes; a new error picks its place by choosing its base class here.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

EXIT_FAILURE = 1   # something went wrong that is not the user's input
EXIT_USAGE = 2     # the input was wrong: a flag, a field, a file
EXIT_INTERRUPTED = 130


class CadenzaError(Exception):
    """Base of Cadenza's errors. ``status`` is a grpc.StatusCode name; ``exit_code`` the CLI's."""

    status: str = "INTERNAL"
    exit_code: int = EXIT_FAILURE


class SpecError(CadenzaError, ValueError):
    """A request field is out of range or malformed: it names the field and what is accepted.

    ``field`` is the request field's name, so the server can answer INVALID_ARGUMENT and the CLI
    can point at the flag.
    """

    status = "INVALID_ARGUMENT"
    exit_code = EXIT_USAGE

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UsageError(CadenzaError, ValueError):
    """Input that is wrong but is not one request field (a store URL, a target, a project file)."""

    status = "INVALID_ARGUMENT"
    exit_code = EXIT_USAGE


class NotFound(CadenzaError, LookupError):
    """What was asked for does not exist (a take, a session)."""

    status = "NOT_FOUND"


class Unavailable(CadenzaError, ConnectionError):
    """A service the work needs is out of reach (the engine, the shared store); a retry may succeed."""

    status = "UNAVAILABLE"


class Busy(CadenzaError, RuntimeError):
    """Every worker is busy and the queue is full: try again later."""

    status = "RESOURCE_EXHAUSTED"


class Cancelled(CadenzaError, RuntimeError):
    """The caller went away (cancelled, or its deadline passed); the work was stopped."""

    status = "CANCELLED"
    exit_code = EXIT_INTERRUPTED


class TimedOut(CadenzaError, TimeoutError):
    """Work ran past its time limit and was stopped."""

    status = "DEADLINE_EXCEEDED"


class Broken(CadenzaError, RuntimeError):
    """The install or a third-party part is broken, not the request (a missing checkpoint, a bad plugin)."""

    status = "FAILED_PRECONDITION"


class Refused(CadenzaError, PermissionError):
    """Something the rules forbid (an insecure bind, a path outside the allowed folders)."""

    status = "PERMISSION_DENIED"
    exit_code = EXIT_USAGE


class Exists(CadenzaError, FileExistsError):
    """A file the user has would be overwritten; nothing was written."""

    status = "ALREADY_EXISTS"


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
        try:
            _should_stop.reset(token)
        except ValueError:  # a streaming handler closed by the garbage collector in another thread
            pass


def check_stop(doing: str) -> None:
    """Raise Cancelled (naming ``doing``) if the request this work is for has been given up."""
    should_stop = _should_stop.get()
    if should_stop is not None and should_stop():
        raise Cancelled(f"stopped while {doing}")
