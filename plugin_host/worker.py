"""Rendering in a worker process, so a crashing or hanging third-party plugin cannot take the engine down.

The worker is a fresh interpreter (`python -m plugin_host.worker FD`), which is safe beside
gRPC's threads and needs no ``if __name__ == "__main__"`` guard in the caller. It reads the job
(score as SMF bytes, rate, options) pickled from stdin, and sends messages on its own pipe (not
stdout, which a plugin may print to): ("status", fraction, doing), then ("done", stems) or
("error", kind, message, detail). The parent stops it after ``timeout`` seconds of render time;
the error names what the worker was doing, which names the plugin when a plugin was at work.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from symusic import Score

from plugin_host.config import WORKER_START_SECONDS
from plugin_host.stems import Stems

POLL_SECONDS = 0.05
STDERR_TAIL_CHARS = 600


class RenderFailed(RuntimeError):
    """The render failed in the worker (an exception, or the worker died); ``plugin`` names the culprit if known."""

    def __init__(self, message: str, plugin: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin


class RenderTimeout(RenderFailed, TimeoutError):
    """The worker did not finish in time and was stopped."""


def _plugin_in(doing: str) -> str | None:
    """The plugin a status line names ("loading plugin X", "processing p through X"), if any."""
    if "built-in effects" in doing:
        return None
    for marker in ("plugin ", "through "):
        if marker in doing:
            return doing.split(marker, 1)[1]
    return None


def render_isolated(score: Score, sample_rate: int, options, progress: Callable[[float], None] | None,
                    timeout: float) -> Stems:
    """Run ``render_in_process`` in a worker; RenderTimeout / RenderFailed name the plugin at work."""
    from plugin_host.instruments import PluginError
    from plugin_host.render import RenderOptionError

    read_fd, write_fd = os.pipe()
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen([sys.executable, "-m", "plugin_host.worker", str(write_fd)], stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, stderr=stderr, pass_fds=(write_fd,), env=env)
        os.close(write_fd)
        conn = Connection(read_fd)
        doing = "starting the render worker"

        def died() -> RenderFailed:
            process.wait(5)
            stderr.seek(0)
            said = stderr.read().decode(errors="replace").strip()[-STDERR_TAIL_CHARS:]
            code = process.returncode or 0
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            return RenderFailed(f"the render worker died ({how}) while {doing}" + (f": {said}" if said else ""),
                                _plugin_in(doing))

        try:
            process.stdin.write(pickle.dumps((bytes(score.dumps_midi()), sample_rate, options)))
            process.stdin.close()
            deadline = time.monotonic() + WORKER_START_SECONDS
            while True:
                if conn.poll(POLL_SECONDS):
                    try:
                        message = conn.recv()
                    except EOFError:
                        raise died() from None
                    kind = message[0]
                    if kind == "ready":
                        deadline = time.monotonic() + timeout
                    elif kind == "status":
                        doing = message[2]
                        if progress:
                            progress(message[1])
                    elif kind == "done":
                        return message[1]
                    elif kind == "error":
                        _, error_kind, text, detail = message
                        if error_kind == "plugin":
                            raise PluginError(detail, text.removeprefix(f"plugin {detail}: "))
                        if error_kind == "option":
                            raise RenderOptionError(detail, text.removeprefix(f"{detail} "))
                        raise RenderFailed(f"render failed while {doing}: {error_kind}: {text}", _plugin_in(doing))
                elif process.poll() is not None:
                    raise died()
                if time.monotonic() > deadline:
                    raise RenderTimeout(f"render stopped after {timeout:g} s: still {doing}", _plugin_in(doing))
        except BrokenPipeError:
            raise died() from None
        finally:
            conn.close()
            if process.poll() is None:
                process.kill()
            process.wait(5)


def _main(fd: int) -> None:
    """The worker's body: render the job from stdin, report on ``fd``."""
    conn = Connection(fd)
    from plugin_host.instruments import PluginError
    from plugin_host.render import RenderOptionError, render_in_process

    midi, sample_rate, options = pickle.loads(sys.stdin.buffer.read())
    try:
        conn.send(("ready",))
        stems = render_in_process(Score.from_midi(midi), sample_rate, options,
                                  lambda fraction, doing: conn.send(("status", fraction, doing)))
        conn.send(("done", stems))
    except PluginError as error:
        conn.send(("error", "plugin", str(error), error.plugin))
    except RenderOptionError as error:
        conn.send(("error", "option", str(error), error.field))
    except Exception as error:  # sent to the parent as text
        conn.send(("error", type(error).__name__, str(error), None))
    finally:
        conn.close()


if __name__ == "__main__":
    _main(int(sys.argv[1]))
