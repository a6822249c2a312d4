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

Messages: jobs go down one pipe (("render", score as SMF bytes, rate, options, file request or None),
pickled: small, or ("warm", SMF, rate, options, track indexes): parts rendered ahead into the worker's
cache, no answer); the worker answers on its own pipe (not stdout, which a plugin may print to):
("ready",), ("status", fraction, doing), then ("done", layout) followed by every buffer as raw bytes
(no pickling of audio: the parent receives them straight into numpy arrays), or, for a file request,
("files", layout), ("file", name) + the file's bytes for each stem and the mix as it is encoded (or
("file", name, path) for a file left in the request's folder),
("picture",) + clip.png's bytes, ("end",); or ("error", kind, message, detail).
The parent stops a worker after ``timeout`` seconds of render time; the error names what the
worker was doing, which names the plugin when a plugin was at work.
"""
from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
from symusic import Score

from engine.config import RENDER_WORKER_ADDRESS_SPACE_BYTES, RENDER_WORKER_STDERR_KEEP_BYTES
from engine.errors import CadenzaError, Cancelled, TimedOut
from plugin_host.config import (
    IDLE_WORKERS,
    RENDER_THREADS,
    WORKER_HEAP_KEEP_BYTES,
    WORKER_MAX_RENDERS,
    WORKER_START_SECONDS,
)
from plugin_host.inprocess import (
    FileRequest,
    RenderCache,
    RenderOptionError,
    RenderOptions,
    render_in_process,
    warm_parts,
)
from plugin_host.stems import BufferFn, FileFn, StemFiles, Stems, report_of

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


class _StderrTail:
    """A worker's stderr, read as it comes and only its last ``keep`` bytes kept (a chatty plugin
    cannot fill a disk or the engine's memory)."""

    def __init__(self, pipe, keep: int = RENDER_WORKER_STDERR_KEEP_BYTES) -> None:
        self.keep = keep
        self._data = bytearray()
        self._lock = threading.Lock()
        self.dropped = 0
        self._thread = threading.Thread(target=self._read, args=(pipe,), name="worker-stderr", daemon=True)
        self._thread.start()

    def _read(self, pipe) -> None:
        with pipe:
            while chunk := pipe.read1(64 * 1024):
                with self._lock:
                    self._data += chunk
                    if len(self._data) > self.keep:
                        self.dropped += len(self._data) - self.keep
                        del self._data[:len(self._data) - self.keep]

    def text(self, wait: float = 1.0) -> str:
        """What is kept, once the pipe has ended (or after ``wait`` seconds)."""
        self._thread.join(wait)
        with self._lock:
            return self._data.decode(errors="replace")


class _Worker:
    """A started worker process: a pipe for jobs, a pipe for its messages, the tail of its stderr."""

    def __init__(self) -> None:
        job_read, job_write = os.pipe()
        reply_read, reply_write = os.pipe()
        _widen(reply_write)
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([sys.executable, "-m", "plugin_host.worker", str(job_read), str(reply_write)],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        pass_fds=(job_read, reply_write), env=env)
        self.stderr = _StderrTail(self.process.stderr)
        os.close(job_read)
        os.close(reply_write)
        self.jobs = Connection(job_write, readable=False)
        self.conn = Connection(reply_read, writable=False)
        self.renders = 0
        self.send_lock = threading.Lock()  # a render's job and parts sent ahead come from different threads

    def send(self, job: tuple) -> None:
        with self.send_lock:
            self.jobs.send(job)

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        """Stop the process (it is idle or must not be trusted any more) and free its pipes."""
        self.jobs.close()  # an idle worker sees its job pipe close and exits by itself
        self.conn.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)


_idle: list[_Worker] = []
_busy: set[_Worker] = set()
_idle_lock = threading.Lock()


def _take_worker() -> _Worker:
    """An idle worker that is still alive, else a new one."""
    while True:
        with _idle_lock:
            worker = _idle.pop() if _idle else None
        if worker is None or worker.alive():
            worker = worker or _Worker()
            with _idle_lock:
                _busy.add(worker)
            return worker
        worker.close()


def _give_back(worker: _Worker) -> None:
    """Keep a worker that rendered cleanly for the next render (up to IDLE_WORKERS of them)."""
    worker.renders += 1
    with _idle_lock:
        _busy.discard(worker)
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


def stop_all() -> None:
    """Kill every render worker, idle or busy (an engine exiting without waiting for its renders)."""
    with _idle_lock:
        busy = list(_busy)
        _busy.clear()
    for worker in busy:
        worker.close()
    _stop_idle()


def warm(score: Score, sample_rate: int, options, indexes: list[int]) -> bool:
    """Send the parts at ``indexes`` of ``score`` to the idle worker to render ahead into its cache (without
    waiting); the next render of a clip that starts with these tracks, with these options, takes them as they
    are. False when no worker is idle (all busy rendering, or IDLE_WORKERS is 0): nothing is sent, and the
    render does all the work, as without."""
    prestart()  # none idle yet (the first render of a process): one starts, and takes the job once it is up
    with _idle_lock:
        worker = next((w for w in reversed(_idle) if w.alive()), None)
    if worker is None:
        return False
    try:
        worker.send(("warm", bytes(score.dumps_midi()), sample_rate, options, list(indexes)))
    except OSError:  # it went away meanwhile: the render will find out and start another
        return False
    return True


def render_isolated(score: Score, sample_rate: int, options, progress: Callable[[float], None] | None,
                    timeout: float, should_stop: Callable[[], bool] | None = None,
                    on_buffer: BufferFn | None = None, files: FileRequest | None = None,
                    on_file: FileFn | None = None) -> Stems | StemFiles:
    """Run ``render_in_process`` in a worker; RenderTimeout / RenderFailed name the plugin at work.

    When ``should_stop`` turns true the worker is killed and Cancelled raised. ``on_buffer`` is called as
    each stem's samples come from the worker (``_receive_stems``). With ``files`` the worker encodes the
    stems (and draws clip.png) itself and StemFiles come back, ``on_file`` called as each file arrives."""
    worker = _take_worker()
    try:
        stems = _run(worker, score, sample_rate, options, progress, timeout, should_stop, on_buffer, files, on_file)
    except BaseException:
        with _idle_lock:
            _busy.discard(worker)
        worker.close()  # it failed, died, hung or was cancelled: never reuse it
        prestart()      # ... and have a fresh one ready for the next render
        raise
    _give_back(worker)
    return stems


def _run(worker: _Worker, score: Score, sample_rate: int, options, progress: Callable[[float], None] | None,
         timeout: float, should_stop: Callable[[], bool] | None = None, on_buffer: BufferFn | None = None,
         files: FileRequest | None = None, on_file: FileFn | None = None) -> Stems | StemFiles:
    """Give ``worker`` the job and follow its messages until stems (or every file), an error, its death or the
    deadline."""
    from plugin_host.instruments import PluginError

    process, conn = worker.process, worker.conn
    doing = "starting the render worker"

    def died() -> RenderFailed:
        process.wait(5)
        said = worker.stderr.text().strip()[-STDERR_TAIL_CHARS:]
        code = process.returncode or 0
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        return RenderFailed(f"the render worker died ({how}) while {doing}" + (f": {said}" if said else ""),
                            _plugin_in(doing))

    try:
        worker.send(("render", bytes(score.dumps_midi()), sample_rate, options, files))
        delivered: StemFiles | None = None
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
                    return _receive_stems(conn, message[1], on_buffer)
                elif kind == "files":  # the stems' layout; each file follows as it is encoded
                    delivered = _stem_files(message[1])
                elif kind == "file":  # its bytes follow, or it names the file left in the request's folder
                    name = message[1]
                    data = Path(message[2]) if len(message) > 2 else conn.recv_bytes()
                    delivered.files[name] = data
                    if on_file is not None:
                        on_file(delivered, name, data)
                elif kind == "picture":
                    delivered.picture = conn.recv_bytes() or None
                elif kind == "end":
                    return delivered
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
    """Everything about the stems but their samples, which follow as raw bytes (or files) in this order."""
    return {**stems.report(), "parts": [(name, audio.shape) for name, audio in stems.parts.items()],
            "mix": stems.mix.shape}


def _send_stems(conn: Connection, stems: Stems) -> None:
    conn.send(("done", _layout(stems)))
    for audio in [*stems.parts.values(), stems.mix]:
        conn.send_bytes(np.ascontiguousarray(audio, dtype=np.float32).data.cast("B"))


def _send_files(conn: Connection, stems: Stems, request: FileRequest, score: Score, bars: int | None) -> None:
    """The stems as files (``request``): their layout, then each file as soon as it is encoded (the stems, then
    the mix), then clip.png, drawn meanwhile, if asked for; then "end". Each file's bytes follow a message
    naming it, so an error part-way reaches the parent as an error, not as a file."""
    from plugin_host.encode import deliver

    def send(name: str, data: bytes | Path) -> None:
        if isinstance(data, Path):  # left in the request's folder: only its path travels
            conn.send(("file", name, str(data)))
            return
        conn.send(("file", name))
        conn.send_bytes(data)

    conn.send(("files", _layout(stems)))
    png = deliver(stems, request, score, bars, send)
    if png is not None:
        conn.send(("picture",))
        conn.send_bytes(png)
    conn.send(("end",))


def _stem_files(layout: dict) -> StemFiles:
    """The StemFiles ``_send_files``'s layout announces, its files still to come."""
    frames, channels = layout["mix"]
    return StemFiles(**report_of(layout), channels=channels, frames=frames, parts=[name for name, _ in layout["parts"]])


def _receive_stems(conn: Connection, layout: dict, on_buffer: BufferFn | None = None) -> Stems:
    """The buffers ``_send_stems`` wrote, received straight into float32 arrays (no unpickling copy).

    ``on_buffer(stems, name)`` is called as each buffer is in (the parts in order, then "mix"), while the
    rest still travel: ``stems`` has every field but only those buffers filled."""
    def empty(shape: tuple[int, ...]) -> np.ndarray:
        return np.empty(shape, dtype=np.float32)  # its pages are taken as the bytes arrive

    stems = Stems(**report_of(layout), parts={name: empty(shape) for name, shape in layout["parts"]},
                  mix=empty(layout["mix"]))
    for name, audio in [*stems.parts.items(), ("mix", stems.mix)]:
        if audio.nbytes:
            conn.recv_bytes_into(audio.data.cast("B"))
        else:
            conn.recv_bytes()
        if on_buffer is not None:
            on_buffer(stems, name)
    return stems


def _warm_up(cache) -> None:
    """Render one bar once, so first-call costs (lazy imports, filter design, SoundFont parse) are paid
    while the worker waits rather than while a user does."""
    from symusic import Note, Tempo, Track

    import plugin_host.peak_kernel  # noqa: F401  the true-peak interpolation, compiled or loaded from numba's cache

    score = Score(480)
    score.tempos.append(Tempo(0, qpm=120.0))
    track = Track(name="warm-up", program=0, is_drum=True)
    track.notes.append(Note(0, 240, 36, 100))
    score.tracks.append(track)
    render_in_process(score, 48000, RenderOptions(bars=1), cache=cache)


def limit_memory(address_space: int = RENDER_WORKER_ADDRESS_SPACE_BYTES) -> None:
    """Cap this process's address space (RLIMIT_AS, where the platform has it): a render that
    outgrows it fails with MemoryError instead of taking the machine's memory."""
    try:
        import resource
    except ImportError:  # Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = address_space if hard == resource.RLIM_INFINITY else min(address_space, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def keep_freed_memory(keep: int = WORKER_HEAP_KEEP_BYTES) -> bool:
    """Have glibc's malloc serve a render's buffers (megabytes each) from its heap and keep up to ``keep``
    bytes of them once freed, instead of mapping fresh pages for every buffer and unmapping them after.

    By default a buffer over the (adaptive) mmap threshold is mapped and unmapped each time, and
    every page of it is faulted in again by the kernel: about 12,000 page faults and 0.1 s of system
    time per 16 s render here. With the threshold at glibc's most (32 MiB: above every buffer of a
    clip up to about a minute), the pages stay mapped between renders. The resident size stays near
    the worker's peak (which VmHWM reports anyway).
    A no-op (False) where malloc is not glibc's."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    mmap_threshold_max = 32 * 1024**2  # glibc refuses more on 64-bit: longer clips' buffers are still mapped
    return bool(mallopt(m_mmap_threshold, min(keep, mmap_threshold_max))) and bool(mallopt(m_trim_threshold, keep))


def _warm(render_claimed: Callable[[], None]) -> None:
    """The rendering of a ("warm", SMF, rate, options, indexes) job's parts, claimed before (``warm_parts``)."""
    try:
        render_claimed()
    except Exception as error:  # the render of the clip meets the same error and reports it
        print(f"rendering parts ahead failed: {error}", file=sys.stderr)


def _main(job_fd: int, reply_fd: int) -> None:
    """The worker's body: render jobs from ``job_fd`` until it closes, report on ``reply_fd``."""
    limit_memory()
    keep_freed_memory()
    jobs = Connection(job_fd, writable=False)
    conn = Connection(reply_fd, readable=False)
    from plugin_host.instruments import PluginError

    cache = RenderCache()
    _warm_up(cache)
    # Parts sent ahead render on threads of their own, beside the next job: a render that needs one of them
    # waits for it (RenderCache.part) instead of rendering it twice.
    ahead = ThreadPoolExecutor(max_workers=RENDER_THREADS, thread_name_prefix="ahead")
    while True:
        try:
            job = jobs.recv()  # an idle worker waits here, warmed up
        except EOFError:
            ahead.shutdown(wait=False, cancel_futures=True)
            return  # the parent went away or let this worker go
        if job[0] == "warm":  # nobody waits for the answer: a failure only costs time
            try:  # claimed here, before the next job is read: a render sent after it waits for these parts
                claimed = warm_parts(Score.from_midi(job[1]), job[2], job[3], job[4], cache)
            except Exception as error:
                print(f"rendering parts ahead failed: {error}", file=sys.stderr)
                continue
            ahead.submit(_warm, claimed)
            continue
        _, midi, sample_rate, options, files = job
        try:
            conn.send(("ready",))
            score = Score.from_midi(midi)
            stems = render_in_process(score, sample_rate, options,
                                      lambda fraction, doing: conn.send(("status", fraction, doing)), cache=cache)
            if files is None:
                _send_stems(conn, stems)
            else:
                _send_files(conn, stems, files, score, options.bars)
        except PluginError as error:
            conn.send(("error", "plugin", str(error), error.plugin))
        except RenderOptionError as error:
            conn.send(("error", "option", str(error), error.field))
        except MemoryError:  # past RLIMIT_AS: this render, not the machine, runs out
            conn.send(("error", "MemoryError", f"the render needed more than the worker's "
                       f"{RENDER_WORKER_ADDRESS_SPACE_BYTES / 1024**3:.0f} GiB of memory", None))
        except Exception as error:  # sent to the parent as text
            conn.send(("error", type(error).__name__, str(error), None))


if __name__ == "__main__":
    _main(int(sys.argv[1]), int(sys.argv[2]))
