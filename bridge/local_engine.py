"""Which engine a CLI call talks to when no ``--engine`` is given.

1. The user's running engine, if one is announced in the runtime folder (engine/serving/local.py),
   its process is alive, it runs this code as it is now, its health service says SERVING, it
   keeps sessions where this call wants them (``--state``, $CADENZA_STATE) and it may load this
   call's ``--plugin`` files.
2. Else, if no engine is announced (or the one announced runs older code), one started here in
   the background: `cadenza serve
   --port 0 --idle-timeout N`, detached from this process, logging to the runtime folder's
   engine.log. It announces itself, so the next call finds it; it stops after N quiet seconds
   (config.LOCAL_ENGINE_IDLE_SECONDS) or on `cadenza serve --stop`.
3. Else (an engine runs, but for other sessions or other plugins; or the runtime folder is not
   privately the user's) a private engine for this call only, stopped when the call ends, so the
   user's engine is left as it is.

Starting is serialised by a lock file, so two calls at once start one engine, not two.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from bridge.client import ENGINE_START_TIMEOUT_SECONDS, EngineClient, EngineProcess, EngineUnavailable, FileHandoff
from engine.config import LOCAL_ENGINE_IDLE_SECONDS
from engine.serving.local import LOG_FILE, LocalEngine, code_root, find_local_engine, handoff_folder, runtime_dir
from engine.sessions.store import store_name

HEALTH_TIMEOUT_SECONDS = 2.0
LOCK_FILE = "engine.lock"


@dataclass
class Connection:
    """A checked client and how its engine came to be: ``running``, ``started`` or ``private``."""

    client: EngineClient
    how: str
    process: EngineProcess | None = None  # a private engine, stopped by close()

    def close(self) -> None:
        self.client.close()
        if self.process is not None:
            self.process.close()


@contextlib.contextmanager
def _start_lock() -> Iterator[None]:
    with open(runtime_dir() / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _healthy(found: LocalEngine) -> EngineClient | None:
    """A checked client of the engine ``found`` announced (taking rendered files from the runtime folder when
    it announced a handoff secret), or None when it does not answer."""
    handoff = FileHandoff(found.handoff, handoff_folder()) if found.handoff else None
    client = EngineClient(found.target, handoff=handoff)
    try:
        client.check(timeout=HEALTH_TIMEOUT_SECONDS)
    except EngineUnavailable:
        client.close()
        return None
    return client


def start_background_engine(state: str | None = None,
                            idle_timeout: float = LOCAL_ENGINE_IDLE_SECONDS) -> LocalEngine:
    """Start `cadenza serve` detached from this process and wait for its announcement."""
    folder = runtime_dir()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [code_root(), env.get("PYTHONPATH")]))
    args = [sys.executable, "-m", "bridge.cli", "serve", "--port", "0", "--idle-timeout", f"{idle_timeout:g}",
            *(["--state", state] if state else [])]
    with open(folder / LOG_FILE, "w") as log:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=folder, env=env,
                                   start_new_session=True)  # not killed by the terminal's Ctrl-C
    deadline = time.monotonic() + ENGINE_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        found = find_local_engine()
        if found is not None and found.pid == process.pid:
            return found
        if process.poll() is not None:
            tail = (folder / LOG_FILE).read_text(errors="replace").strip().splitlines()[-5:]
            raise EngineUnavailable("could not start an engine: " + (" / ".join(tail) or f"exit {process.returncode}"))
        time.sleep(0.05)
    process.terminate()
    raise EngineUnavailable(f"the engine started in the background did not announce itself within "
                            f"{ENGINE_START_TIMEOUT_SECONDS:g} s (see {folder / LOG_FILE})")


def _shared(wanted: str, state: str | None, plugin_paths: list[str]) -> Connection | None:
    """The user's engine, found or started (steps 1 and 2 of the module docstring), or None."""
    with _start_lock():
        found = find_local_engine()
        if found is not None and not found.current():
            found = None  # started from other or older code: a new one takes over, the old one idles out
        if found is not None and found.serves(wanted, list(plugin_paths)):
            client = _healthy(found)
            if client is not None:
                return Connection(client, "running")
            found = None  # announced but not answering (hung, or stopping): a new one replaces it
        if found is None and not plugin_paths:
            client = _healthy(start_background_engine(state))
            if client is not None:
                return Connection(client, "started")
    return None


def connect_local(state: str | None = None, plugin_paths: list[str] = ()) -> Connection:
    """A checked client of the user's engine, found or started (see the module docstring)."""
    wanted = store_name(None, state)
    try:
        shared = _shared(wanted, state, plugin_paths)
    except PermissionError as error:  # a runtime folder that is not privately ours: never trust or use it
        print(f"cadenza: note: {error}; using an engine for this call only", file=sys.stderr)
        shared = None
    if shared is not None:
        return shared
    folders = sorted({str(os.path.dirname(os.path.abspath(p))) for p in plugin_paths})
    process = EngineProcess(*[a for f in folders for a in ("--plugin-folder", f)],
                            *(["--state", state] if state else []))
    client = EngineClient(process.target)
    try:
        client.check()
    except EngineUnavailable:
        client.close()
        process.close()
        raise
    return Connection(client, "private", process)


def connect(engine: str | None, state: str | None = None) -> Connection:
    """A checked client of ``engine`` (any gRPC target, no TLS) or, without one, of the user's
    engine as `connect_local` finds or starts it."""
    if not engine:
        return connect_local(state)
    client = EngineClient(engine)
    try:
        client.check()
    except EngineUnavailable:
        client.close()
        raise
    return Connection(client, "named")
