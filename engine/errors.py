"""The one exception hierarchy: every error Cadenza raises on purpose says what went wrong, and
carries the gRPC status the engine answers with and the exit code the CLI ends with.

The server (engine/serving/server.py) and the CLI (bridge/cli.py) map errors in one place each,
by these two attributes; a new error picks its place by choosing its base class here.
"""
from __future__ import annotations

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
