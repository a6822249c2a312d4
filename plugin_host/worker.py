"""Rendering in a worker process, so a crashing or hanging third-party plugin cannot take the engine down.

The worker is a fresh interpreter (`python -m plugin_host.worker FD`), which is safe beside
gRPC's threads and needs no ``if __name__ == "__main__"`` guard in the caller. It reads the job
(score as SMF bytes, rate, options) pickled from stdin, and sends messages on its own pipe (not
stdout, which a plugin may print to): ("status", fraction, doing), then ("done", stems) or
("error", kind, message, detail). The parent stops it after ``timeout`` seconds of render time;
the error names what the worker was doing, which names the plugin when a plugin was at work.

Starting an interpreter and importing numpy, scipy and pedalboard takes about a second, longer
than rendering a short clip; so after each render a spare worker is started, which imports
everything and then waits for its job on stdin. The next render takes it (one spare per process;
it exits by itself when its parent goes away, because its stdin closes).
"""
from __future__ import annotations

import atexit
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from symusic import Score

from engine.errors import Cancelled
from plugin_host.config import KEEP_WARM_WORKER, WORKER_START_SECONDS
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


class _Worker:
    """A started worker process: its stdin for the job, a pipe for its messages, a file for its stderr."""

    def __init__(self) -> None:
        read_fd, write_fd = os.pipe()
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen([sys.executable, "-m", "plugin_host.worker", str(write_fd)],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.stderr,
                                        pass_fds=(write_fd,), env=env)
        os.close(write_fd)
        self.conn = Connection(read_fd)

    def close(self) -> None:
        self.conn.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)
        if self.process.stdin and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:  # the worker died with its pipe half-written
                pass
        self.stderr.close()


_spare: _Worker | None = None
_spare_lock = threading.Lock()


def _take_worker() -> _Worker:
    """The warm spare if it is still alive, else a new worker."""
    global _spare
    with _spare_lock:
        worker, _spare = _spare, None
    if worker is not None and worker.process.poll() is None:
        return worker
    if worker is not None:
        worker.close()
    return _Worker()


def _start_spare() -> None:
    global _spare
    if not KEEP_WARM_WORKER:
        return
    with _spare_lock:
        if _spare is None or _spare.process.poll() is not None:
            _spare = _Worker()


@atexit.register
def _stop_spare() -> None:
    global _spare
    with _spare_lock:
        worker, _spare = _spare, None
    if worker is not None:
        worker.close()


def render_isolated(score: Score, sample_rate: int, options, progress: Callable[[float], None] | None,
                    timeout: float, should_stop: Callable[[], bool] | None = None) -> Stems:
    """Run ``render_in_process`` in a worker; RenderTimeout / RenderFailed name the plugin at work.

    When ``should_stop`` turns true the worker is killed and Cancelled raised."""
    worker = _take_worker()
    try:
        return _run(worker, score, sample_rate, options, progress, timeout, should_stop)
    finally:
        worker.close()
        _start_spare()


def _run(worker: _Worker, score: Score, sample_rate: int, options, progress: Callable[[float], None] | None,
         timeout: float, should_stop: Callable[[], bool] | None = None) -> Stems:
    """Give ``worker`` the job and follow its messages until stems, an error, its death or the deadline."""
    from plugin_host.instruments import PluginError
    from plugin_host.render import RenderOptionError

    process, conn, stderr = worker.process, worker.conn, worker.stderr
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
                if conn.poll(0):
                    continue  # it wrote, then died between our polls: read what it said (what it was doing) first
                raise died()
            if should_stop and should_stop():
                raise Cancelled(f"render stopped while {doing}")
            if time.monotonic() > deadline:
                raise RenderTimeout(f"render stopped after {timeout:g} s: still {doing}", _plugin_in(doing))
    except BrokenPipeError:
        raise died() from None


def _warm_up() -> None:
    """Render one bar once, so first-call costs (lazy imports, filter design, SoundFont parse) are paid
    while the spare waits rather than while a user does."""
    from symusic import Note, Tempo, Track

    from plugin_host.render import RenderOptions, render_in_process

    score = Score(480)
    score.tempos.append(Tempo(0, qpm=120.0))
    track = Track(name="warm-up", program=0, is_drum=True)
    track.notes.append(Note(0, 240, 36, 100))
    score.tracks.append(track)
    render_in_process(score, 48000, RenderOptions(bars=1))


def _main(fd: int) -> None:
    """The worker's body: render the job from stdin, report on ``fd``."""
    conn = Connection(fd)
    from plugin_host.instruments import PluginError
    from plugin_host.render import RenderOptionError, render_in_process

    _warm_up()
    job = sys.stdin.buffer.read()  # a warm spare waits here, warmed up, until it gets a job
    if not job:
        return  # the parent went away without giving a job
    midi, sample_rate, options = pickle.loads(job)
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
