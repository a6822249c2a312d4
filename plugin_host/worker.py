"""Rendering in a worker process, so a crashing or hanging third-party plugin cannot take the engine down.

The worker is a fresh interpreter (`python -m plugin_host.worker JOB_FD REPLY_FD`), which is safe
beside gRPC's threads and needs no ``if __name__ == "__main__"`` guard in the caller. It is
persistent: started once, it renders job after job, so the interpreter start, the imports
(numpy, scipy, pedalboard) and first-call costs are paid once, not per render, and the plugins
it loaded stay loaded (plugin_host/render.py's RenderCache, keyed by path, modification time and
preset). A worker that failed, crashed, hung or was cancelled is killed and never reused; a new
one is started in the background for the next render, so fault isolation is as before: a
crashing plugin fails only its render, a hang is cut off at the timeout, and either names the
plugin.

Messages: jobs go down one pipe ((score as SMF bytes, rate, options), pickled: small); the worker
answers on its own pipe (not stdout, which a plugin may print to): ("ready",), ("status",
fraction, doing), then ("done", layout) followed by every buffer as raw bytes (no pickling of
audio: the parent receives them straight into numpy arrays), or ("error", kind, message, detail).
The parent stops a worker after ``timeout`` seconds of render time; the error names what the
worker was doing, which names the plugin when a plugin was at work.
"""
from __future__ import annotations

import atexit
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
from symusic import Score

from engine.errors import CadenzaError, Cancelled, TimedOut
from plugin_host.config import IDLE_WORKERS, WORKER_MAX_RENDERS, WORKER_START_SECONDS
from plugin_host.inprocess import RenderCache, RenderOptionError, RenderOptions, render_in_process
from plugin_host.stems import Stems

try:
    import fcntl
except ImportError:  # Windows: no pipe sizing
    fcntl = None

POLL_SECONDS = 0.05
STDERR_TAIL_CHARS = 600
PIPE_BYTES = 1 << 20


class RenderFailed(CadenzaError, RuntimeError):
    """The render failed in the worker (an exception, or the worker died); ``plugin`` names the culprit if known."""

    def __init__(self, message: str, plugin: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin


class RenderTimeout(TimedOut, RenderFailed):
    """The worker did not finish in time and was stopped."""


def _plugin_in(doing: str) -> str | None:
    """The plugin a status line names ("loading plugin X", "processing p through X"), if any."""
    if "built-in effects" in doing:
        return None
    for marker in ("plugin ", "through "):
        if marker in doing:
            return doing.split(marker, 1)[1]
    return None


def _widen(fd: int) -> None:
    """Give a pipe a 1 MiB buffer (Linux; 64 KiB by default), so megabytes of stems cross it in a few
    large writes instead of hundreds of 64 KiB ones, each a context switch."""
    if fcntl is not None and hasattr(fcntl, "F_SETPIPE_SZ"):
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:  # above /proc/sys/fs/pipe-max-size: keep the default
            pass


class _Worker:
    """A started worker process: a pipe for jobs, a pipe for its messages, a file for its stderr."""

    def __init__(self) -> None:
        job_read, job_write = os.pipe()
        reply_read, reply_write = os.pipe()
        _widen(reply_write)
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen([sys.executable, "-m", "plugin_host.worker", str(job_read), str(reply_write)],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr,
                                        pass_fds=(job_read, reply_write), env=env)
        os.close(job_read)
        os.close(reply_write)
        self.jobs = Connection(job_write, readable=False)
        self.conn = Connection(reply_read, writable=False)
        self.renders = 0

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        """Stop the process (it is idle or must not be trusted any more) and free its pipes."""
        self.jobs.close()  # an idle worker sees its job pipe close and exits by itself
        self.conn.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)
        self.stderr.close()


_idle: list[_Worker] = []
_idle_lock = threading.Lock()


def _take_worker() -> _Worker:
    """An idle worker that is still alive, else a new one."""
    while True:
        with _idle_lock:
            worker = _idle.pop() if _idle else None
        if worker is None:
            return _Worker()
        if worker.alive():
            return worker
        worker.close()


def _give_back(worker: _Worker) -> None:
    """Keep a worker that rendered cleanly for the next render (up to IDLE_WORKERS of them)."""
    worker.renders += 1
    with _idle_lock:
        if worker.alive() and worker.renders < WORKER_MAX_RENDERS and len(_idle) < IDLE_WORKERS:
            _idle.append(worker)
            return
    worker.close()
    prestart()


def prestart() -> None:
    """Start a worker now if none is idle, so the next render finds one with its imports done."""
    with _idle_lock:
        if IDLE_WORKERS < 1 or any(worker.alive() for worker in _idle):
            return
        _idle.append(_Worker())


@atexit.register
def _stop_idle() -> None:
    with _idle_lock:
        workers = list(_idle)
        _idle.clear()
    for worker in workers:
        worker.close()


def render_isolated(score: Score, sample_rate: int, options, progress: Callable[[float], None] | None,
                    timeout: float, should_stop: Callable[[], bool] | None = None) -> Stems:
    """Run ``render_in_process`` in a worker; RenderTimeout / RenderFailed name the plugin at work.

    When ``should_stop`` turns true the worker is killed and Cancelled raised."""
    worker = _take_worker()
    try:
        stems = _run(worker, score, sample_rate, options, progress, timeout, should_stop)
    except BaseException:
        worker.close()  # it failed, died, hung or was cancelled: never reuse it
        prestart()      # ... and have a fresh one ready for the next render
        raise
    _give_back(worker)
    return stems


def _run(worker: _Worker, score: Score, sample_rate: int, options, progress: Callable[[float], None] | None,
         timeout: float, should_stop: Callable[[], bool] | None = None) -> Stems:
    """Give ``worker`` the job and follow its messages until stems, an error, its death or the deadline."""
    from plugin_host.instruments import PluginError

    process, conn = worker.process, worker.conn
    doing = "starting the render worker"

    def died() -> RenderFailed:
        process.wait(5)
        worker.stderr.seek(0)
        said = worker.stderr.read().decode(errors="replace").strip()[-STDERR_TAIL_CHARS:]
        code = process.returncode or 0
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        return RenderFailed(f"the render worker died ({how}) while {doing}" + (f": {said}" if said else ""),
                            _plugin_in(doing))

    try:
        worker.jobs.send((bytes(score.dumps_midi()), sample_rate, options))
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
                    return _receive_stems(conn, message[1])
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
    except (BrokenPipeError, EOFError):
        raise died() from None


def _layout(stems: Stems) -> dict:
    """Everything about the stems but their samples, which follow as raw bytes in this order."""
    return {"sample_rate": stems.sample_rate, "clip_frames": stems.clip_frames,
            "loudness_lufs": stems.loudness_lufs, "true_peak_dbtp": stems.true_peak_dbtp,
            "parts": [(name, audio.shape) for name, audio in stems.parts.items()], "mix": stems.mix.shape}


def _send_stems(conn: Connection, stems: Stems) -> None:
    conn.send(("done", _layout(stems)))
    for audio in [*stems.parts.values(), stems.mix]:
        conn.send_bytes(np.ascontiguousarray(audio, dtype=np.float32).data.cast("B"))


def _receive_stems(conn: Connection, layout: dict) -> Stems:
    """The buffers ``_send_stems`` wrote, received straight into float32 arrays (no unpickling copy)."""
    def receive(shape: tuple[int, ...]) -> np.ndarray:
        audio = np.empty(shape, dtype=np.float32)
        if audio.nbytes:
            conn.recv_bytes_into(audio.data.cast("B"))
        else:
            conn.recv_bytes()
        return audio

    parts = {name: receive(shape) for name, shape in layout["parts"]}
    return Stems(sample_rate=layout["sample_rate"], parts=parts, mix=receive(layout["mix"]),
                 clip_frames=layout["clip_frames"], loudness_lufs=layout["loudness_lufs"],
                 true_peak_dbtp=layout["true_peak_dbtp"])


def _warm_up(cache) -> None:
    """Render one bar once, so first-call costs (lazy imports, filter design, SoundFont parse) are paid
    while the worker waits rather than while a user does."""
    from symusic import Note, Tempo, Track


    score = Score(480)
    score.tempos.append(Tempo(0, qpm=120.0))
    track = Track(name="warm-up", program=0, is_drum=True)
    track.notes.append(Note(0, 240, 36, 100))
    score.tracks.append(track)
    render_in_process(score, 48000, RenderOptions(bars=1), cache=cache)


def _main(job_fd: int, reply_fd: int) -> None:
    """The worker's body: render jobs from ``job_fd`` until it closes, report on ``reply_fd``."""
    jobs = Connection(job_fd, writable=False)
    conn = Connection(reply_fd, readable=False)
    from plugin_host.instruments import PluginError

    cache = RenderCache()
    _warm_up(cache)
    while True:
        try:
            midi, sample_rate, options = jobs.recv()  # an idle worker waits here, warmed up
        except EOFError:
            return  # the parent went away or let this worker go
        try:
            conn.send(("ready",))
            stems = render_in_process(Score.from_midi(midi), sample_rate, options,
                                      lambda fraction, doing: conn.send(("status", fraction, doing)), cache=cache)
            _send_stems(conn, stems)
        except PluginError as error:
            conn.send(("error", "plugin", str(error), error.plugin))
        except RenderOptionError as error:
            conn.send(("error", "option", str(error), error.field))
        except Exception as error:  # sent to the parent as text
            conn.send(("error", type(error).__name__, str(error), None))


if __name__ == "__main__":
    _main(int(sys.argv[1]), int(sys.argv[2]))
