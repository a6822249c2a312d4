"""The request id a caller puts on a call: one per logical call, the same on every retry.

Read by the observing interceptor (logs) and by the take-making RPCs (a repeated id returns the
take the first attempt made), so both agree on what an id is.
"""
from __future__ import annotations

from collections.abc import Iterable

from engine.errors import SpecError

REQUEST_ID_KEY = "cadenza-request-id"  # gRPC metadata key
REQUEST_ID_MAX_CHARS = 128


def sent_request_id(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The caller's request id from gRPC invocation metadata, or None when it sent none.

    An empty or over-long id is a SpecError naming the key and what is accepted.
    """
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY:
            value = value.strip() if isinstance(value, str) else ""
            if not value or len(value) > REQUEST_ID_MAX_CHARS:
                raise SpecError(REQUEST_ID_KEY, f"must be 1-{REQUEST_ID_MAX_CHARS} characters of text "
                                                f"(a fresh random hex id per logical call), got {value[:40]!r}")
            return value
    return None
