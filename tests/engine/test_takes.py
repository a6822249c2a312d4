"""The take store: real SQLite files, reopened, written by two threads and by a process killed -9."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from engine.sessions.store.sql import MIGRATIONS, SqliteTakeStore, Take, new_take_id


def _take(session: str, parent: str | None = None, size: int = 200) -> Take:
    midi = b"MThd" + os.urandom(size)
    return Take(id=new_take_id(), session=session, parent=parent, operation="generate" if parent is None else "vary",
                params={"n": size}, spec=b"spec", seed=7, model_version="test", midi=midi, created=time.time(),
                features={"density": 1.0})


def test_takes_and_verdicts_survive_reopening(tmp_path: Path) -> None:
    store = SqliteTakeStore(tmp_path / "s.sqlite")
    first = store.add(_take("song"))
    second = store.add(_take("song", parent=first.id))
    store.set_verdict("song", first.id, "reject", "too busy")
    store.set_verdict("song", second.id, "keep")
    store.set_verdict("song", second.id, "rate", rating=4)
    store.close()

    again = SqliteTakeStore(tmp_path / "s.sqlite")
    history = again.history("song")
    assert [t.id for t in history] == [first.id, second.id]
    assert history[0].verdict == "reject" and history[0].reason == "too busy"
    assert history[1].parent == first.id and history[1].verdict == "keep" and history[1].rating == 4
    assert again.get("song", second.id).midi == second.midi
    assert [v["verdict"] for v in again.verdicts("song")] == ["reject", "keep", "rate"]
    assert again.schema_version == len(MIGRATIONS)
    mode = sqlite3.connect(tmp_path / "s.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


WRITER = """
import sys, time, os
sys.path.insert(0, {root!r})
from engine.sessions.store import SqliteTakeStore, Take, new_take_id
store = SqliteTakeStore({path!r})
i = 0
while True:
    midi = b"MThd" + bytes([i % 256]) * 200_000  # big enough that a kill lands mid-write now and then
    store.add(Take(id=new_take_id(), session="crash", parent=None, operation="generate", params={{"i": i}},
                   spec=b"s", seed=i, model_version="t", midi=midi, created=time.time(), features={{}}))
    i += 1
    print(i, flush=True)
"""


def test_kill_9_mid_write_leaves_whole_takes(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    root = str(Path(__file__).resolve().parents[2])
    process = subprocess.Popen([sys.executable, "-c", WRITER.format(root=root, path=str(path))],
                               stdout=subprocess.PIPE, text=True)
    for _ in range(15):  # let it write a while
        process.stdout.readline()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    takes = SqliteTakeStore(path).history("crash")
    assert len(takes) >= 15
    for take in takes:
        i = take.params["i"]
        assert take.midi == b"MThd" + bytes([i % 256]) * 200_000, f"take {i} is half written"
    assert sorted(t.params["i"] for t in takes) == list(range(len(takes)))
