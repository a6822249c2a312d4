"""An engine started by a CLI for itself ends with that CLI, however the CLI ends.

The CLI starts ``cadenza serve --exit-with-stdin`` with a pipe as the engine's stdin and keeps
the pipe's other end. The kernel closes that end when the CLI exits for any reason (SIGKILL
included), the engine reads end-of-file, and it shuts down as on SIGTERM. A pipe works on every
platform and, unlike Linux's PR_SET_PDEATHSIG, does not fire when merely the thread that started
the engine ends.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger("cadenza.engine")


def stop_with_parent(stop: Callable[[], None], fd: int = 0) -> threading.Thread:
    """Call ``stop`` once ``fd`` (stdin) reaches end-of-file or fails; returns the watching thread."""
    def watch() -> None:
        try:
            while os.read(fd, 4096):
                pass  # anything written is ignored; only the end matters
        except OSError:
            pass
        log.info("the process that started this engine has gone; stopping")
        stop()

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread
