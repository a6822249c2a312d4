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


def test_find_takes_by_id_unique_prefix_or_last_and_name_the_holding_session(tmp_path: Path) -> None:
    import dataclasses

    import pytest

    from engine.errors import SpecError
    from engine.sessions.store import NotFound

    store = SqliteTakeStore(tmp_path / "s.sqlite")
    now = time.time()
    a = store.add(dataclasses.replace(_take("song"), id="abc1230000", created=now))
    b = store.add(dataclasses.replace(_take("song"), id="abd4560000", created=now + 1))
    c = store.add(dataclasses.replace(_take("other"), id="ffe0000000", created=now + 2))
    assert store.find("song", "abc1230000").id == a.id
    assert store.find("song", "abd").id == b.id
    assert store.find("song", "ABD4").id == b.id  # ids are hex; case does not matter
    with pytest.raises(SpecError, match="starts more than one take: abc1230000 \\(song\\), abd4560000"):
        store.find("song", "ab")
    assert store.find("song", "last").id == b.id
    assert store.find("empty", "last", any_session=True).id == c.id
    with pytest.raises(NotFound, match="no takes yet in session 'empty'"):
        store.find("empty", "last")
    assert store.find("song", "ffe", any_session=True).session == "other"
    with pytest.raises(NotFound, match="'ffe' is not in session 'song'; it is in session 'other'"):
        store.find("song", "ffe")
    with pytest.raises(NotFound, match="no take '0123' in any session"):
        store.find("song", "0123", any_session=True)
    for bad in ("", "../etc", "abc%", "x" * 3):
        with pytest.raises(SpecError, match="hex digits"):
            store.find("song", bad)
