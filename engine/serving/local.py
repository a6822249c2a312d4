"""One engine per user: a running `cadenza serve` announces itself so the CLI can use it.

An engine listening on loopback writes ``engine.json`` into the user's runtime folder
(``$CADENZA_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/cadenza``, else ``/tmp/cadenza-UID``; mode
0700, owned by the user) with its address, process id, the store it keeps sessions in and the
code it runs. The file goes when the engine stops. A client reads it with `find_local_engine`,
which checks that the process is alive before trusting it (the caller then asks the engine's
health service, which is the real test of liveness).

A loopback engine has no token (SECURITY.md: loopback is open to local clients), so the file
holds none; engines listening beyond loopback are not announced. It holds a handoff secret instead:
a client that can read the file (the user's own) sends it with a render, and the engine leaves the
encoded stems in the runtime folder's ``handoff`` folder for the client to move into place
(`Handoff`), instead of pushing megabytes through the stream.

An engine may stop itself after a quiet spell (``idle_timeout``): `Activity` stamps every call
(health checks included, so a client that has just checked the engine is not cut off).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc

RUNTIME_ENV = "CADENZA_RUNTIME_DIR"
STATE_FILE = "engine.json"
LOG_FILE = "engine.log"
HANDOFF_FOLDER = "handoff"
HANDOFF_KEEP_SECONDS = 600.0  # a file no client took (it died mid-render) is removed after this long


def code_root() -> str:
    """The folder this code runs from: an engine is reused only by clients of the same code."""
    return str(Path(__file__).resolve().parents[2])


def code_stamp() -> float:
    """The newest modification time of this code's Python files: an engine started before an edit
    or an upgrade does not serve clients of the new code."""
    root = Path(code_root())
    newest = 0.0
    for package in ("engine", "protos", "plugin_host"):  # what an engine runs
        for path in (root / package).rglob("*.py"):
            try:
                newest = max(newest, path.stat().st_mtime)
            except OSError:
                continue
    return newest


def runtime_dir(create: bool = True) -> Path:
    """The user's runtime folder for Cadenza (see the module docstring), made 0700 if missing.

    Refuses a folder another user owns or others can write to: a planted engine.json would
    send this user's prompts and takes to someone else's process.
    """
    if os.environ.get(RUNTIME_ENV):
        folder = Path(os.environ[RUNTIME_ENV])
    elif os.environ.get("XDG_RUNTIME_DIR"):
        folder = Path(os.environ["XDG_RUNTIME_DIR"]) / "cadenza"
    else:
        folder = Path(tempfile.gettempdir()) / f"cadenza-{os.getuid()}"
    if create:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if folder.exists():
        info = folder.stat()
        if info.st_uid != os.getuid() or info.st_mode & 0o022:
            raise PermissionError(f"{folder} is not a private folder of this user (owner {info.st_uid}, mode "
                                  f"{info.st_mode & 0o777:o}); remove it or set ${RUNTIME_ENV} to a folder of yours")
    return folder


@dataclass(frozen=True)
class LocalEngine:
    """What a running engine tells its local clients about itself."""

    target: str                      # gRPC target, e.g. 127.0.0.1:50051
    pid: int
    store: str                       # where its sessions live: a folder, sqlite:///... or postgresql://...
    code: str = field(default_factory=code_root)
    code_stamp: float = field(default_factory=code_stamp)
    plugin_folders: tuple[str, ...] = ()
    idle_timeout: float | None = None
    started: float = field(default_factory=time.time)
    handoff: str = ""                # the secret a render sends to get its files as paths (Handoff)

    def current(self) -> bool:
        """True if this engine runs this code as it is now (same folder, no file changed since)."""
        return self.code == code_root() and self.code_stamp == code_stamp()

    def serves(self, store: str, plugin_paths: list[str] = ()) -> bool:
        """True if this engine keeps sessions in ``store`` and may load every plugin."""
        folders = [Path(f) for f in self.plugin_folders]
        allowed = all(any(Path(p).resolve().is_relative_to(f) for f in folders) for p in plugin_paths)
        return self.store == store and allowed


def handoff_folder(folder: Path | None = None) -> Path:
    """Where local engines leave encoded files for their clients: ``handoff`` in the runtime folder."""
    return (folder or runtime_dir(create=False)) / HANDOFF_FOLDER


class Handoff:
    """Files an engine leaves in the user's runtime folder for a client of the same user to move away.

    The render worker writes each file whole (plugin_host/encode.py's ``leave_file``: mode 0600, a random
    name, in ``folder``, a 0700 folder of this engine's own, ``handoff/PID``) before its path is sent; the
    client moves it into its clip folder. The engine removes its folder when it stops, and files older than
    HANDOFF_KEEP_SECONDS (a client that died before taking them) before each render that hands files over.
    """

    def __init__(self, secret: str, folder: Path) -> None:
        self.secret = secret
        self.folder = folder / str(os.getpid())
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def accepts(self, secret: str) -> bool:
        """True if ``secret`` (a request's) is this engine's: the client read engine.json."""
        import hmac

        return bool(secret) and hmac.compare_digest(secret.encode(), self.secret.encode())

    def sweep(self, now: float | None = None) -> None:
        """Remove files no client took within HANDOFF_KEEP_SECONDS (and make the folder again if it went)."""
        now = time.time() if now is None else now
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            left = list(self.folder.iterdir())
        except OSError:
            return  # the worker cannot leave files there either: they go through the stream
        for path in left:
            try:
                if now - path.stat().st_mtime > HANDOFF_KEEP_SECONDS:
                    path.unlink()
            except OSError:
                continue

    def close(self) -> None:
        """Remove this engine's handoff folder and whatever is still in it."""
        shutil.rmtree(self.folder, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """True if a process with this id exists (ours or, as root, anyone's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def announce(engine: LocalEngine, folder: Path | None = None) -> Path:
    """Write engine.json (mode 0600, atomically) and return its path."""
    folder = folder or runtime_dir()
    path = folder / STATE_FILE
    fd, tmp = tempfile.mkstemp(prefix=f".{STATE_FILE}.", dir=folder)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(engine), handle)
    os.replace(tmp, path)
    return path


def withdraw(pid: int, folder: Path | None = None) -> None:
    """Remove engine.json if it still names the engine with this pid (a newer one may own it now)."""
    try:
        path = (folder or runtime_dir(create=False)) / STATE_FILE
        found = _read(path)
        if found is not None and found.pid == pid:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def _read(path: Path) -> LocalEngine | None:
    try:
        data = json.loads(path.read_text())
        data["plugin_folders"] = tuple(data.get("plugin_folders", ()))
        data.setdefault("code", "")  # written by an engine that did not say: not current
        data.setdefault("code_stamp", 0.0)
        return LocalEngine(**data)
    except (OSError, ValueError, TypeError):
        return None


def find_local_engine() -> LocalEngine | None:
    """The engine announced in the runtime folder if its process is alive, else None (a stale
    file, left by an engine that was killed, is removed)."""
    try:
        path = runtime_dir(create=False) / STATE_FILE
    except PermissionError:
        return None
    found = _read(path)
    if found is None:
        return None
    if not pid_alive(found.pid):
        path.unlink(missing_ok=True)
        return None
    return found


def stop_local_engine(timeout: float = 30.0) -> LocalEngine | None:
    """SIGTERM the announced engine and wait until it is gone; returns it, or None if none runs."""
    import signal

    found = find_local_engine()
    if found is None:
        return None
    os.kill(found.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(found.pid) and time.monotonic() < deadline:
        try:  # our own child (tests) must be reaped to stop existing
            os.waitpid(found.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    if pid_alive(found.pid):
        raise TimeoutError(f"the engine (pid {found.pid}) did not stop within {timeout:g} s")
    return found


WATCH_METHOD = "/grpc.health.v1.Health/Watch"


class Activity(grpc.ServerInterceptor):
    """Stamps the time of every call, so an idle engine can tell how long it has been quiet.

    ``busy`` says whether requests are in flight (admitted ones may run for minutes). An open
    health Watch stream counts as activity too: every client channel (bridge/targets.py's
    client-side health checking) holds one while it is open, so a `cadenza bridge` or `jam`
    waiting for its next command keeps its engine.
    """

    def __init__(self, busy: Callable[[], bool]) -> None:
        self._busy = busy
        self._last = time.monotonic()
        self._watching = 0
        self._lock = threading.Lock()

    def intercept_service(self, continuation, handler_call_details):
        self._touch()
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method != WATCH_METHOD or not handler.unary_stream:
            return handler
        inner = handler.unary_stream
        if getattr(inner, "experimental_non_blocking", False):  # keep Watch holding no thread (issue 18)
            def watching(request, context, send_response_callback=None):
                with self._lock:
                    self._watching += 1

                def ended() -> None:
                    with self._lock:
                        self._watching -= 1
                    self._touch()

                if not context.add_callback(ended):
                    ended()
                return inner(request, context, send_response_callback)

            watching.experimental_non_blocking = True
            return grpc.unary_stream_rpc_method_handler(watching, handler.request_deserializer,
                                                        handler.response_serializer)

        def watched(request, context):
            with self._lock:
                self._watching += 1
            try:
                yield from inner(request, context)
            finally:
                with self._lock:
                    self._watching -= 1
                self._touch()

        return grpc.unary_stream_rpc_method_handler(watched, handler.request_deserializer,
                                                    handler.response_serializer)

    def _touch(self) -> None:
        with self._lock:
            self._last = time.monotonic()

    def idle_seconds(self) -> float:
        """Seconds since the last call started or ended, or 0 while a request or a client is there."""
        if self._busy():
            self._touch()
            return 0.0
        with self._lock:
            if self._watching:
                self._last = time.monotonic()
                return 0.0
            return time.monotonic() - self._last
