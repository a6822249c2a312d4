"""The same store behaviour on both back ends: SQLite files and a real PostgreSQL cluster.

Every test takes `open_same`, a function opening another connection to one database (as
another engine replica would), parametrized over SQLite and PostgreSQL.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.errors import SpecError
from engine.sessions.store import (
    MIGRATIONS,
    NotFound,
    SqliteTakeStore,
    StoreURLError,
    Take,
    TakeStore,
    new_take_id,
    open_store,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def open_same(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], TakeStore]:
    """A function opening a new store on one shared database of the parametrized back end."""
    opened: list[TakeStore] = []
    if request.param == "sqlite":
        where = f"sqlite:///{tmp_path / 's.sqlite'}"
    else:
        where = request.getfixturevalue("postgres_url")

    def open_one() -> TakeStore:
        store = open_store(where)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def _take(session: str, parent: str | None = None, size: int = 200, request_id: str | None = None) -> Take:
    return Take(id=new_take_id(), session=session, parent=parent, operation="generate" if parent is None else "vary",
                params={"n": size}, spec=b"spec\x00\xff", seed=2**63 - 1, model_version="test",
                midi=b"MThd" + os.urandom(size), created=time.time(), features={"density": 1.0},
                request_id=request_id)


def test_takes_verdicts_and_features_survive_reopening(open_same) -> None:
    store = open_same()
    first = store.add(_take("song"))
    second = store.add(_take("song", parent=first.id))
    store.set_verdict("song", first.id, "reject", "too busy")
    store.set_verdict("song", second.id, "keep")
    store.set_verdict("song", second.id, "rate", rating=4)
    store.update_features(first.id, {"likelihood": -2.5})
    store.close()

    again = open_same()
    history = again.history("song")
    assert [t.id for t in history] == [first.id, second.id]
    assert history[0].verdict == "reject" and history[0].reason == "too busy"
    assert history[0].features == {"density": 1.0, "likelihood": -2.5}
    assert history[1].parent == first.id and history[1].verdict == "keep" and history[1].rating == 4
    got = again.get("song", second.id)
    assert got.midi == second.midi and got.spec == b"spec\x00\xff" and got.seed == 2**63 - 1
    assert got.created == second.created and got.params == {"n": 200}
    verdicts = again.verdicts("song")
    assert [v["verdict"] for v in verdicts] == ["reject", "keep", "rate"]
    assert [v["parent"] for v in verdicts] == [None, first.id, first.id]
    assert verdicts[0]["features"]["likelihood"] == -2.5


def test_unknown_and_foreign_takes_are_refused_and_change_nothing(open_same) -> None:
    store = open_same()
    mine = store.add(_take("a"))
    store.add(_take("b"))
    with pytest.raises(NotFound, match="not in session 'b'"):
        store.set_verdict("b", mine.id, "keep")
    with pytest.raises(NotFound, match="no take"):
        store.get("a", "missing")
    with pytest.raises(NotFound, match="no session"):
        store.history("nobody")
    with pytest.raises(SpecError, match="verdict"):
        store.set_verdict("a", mine.id, "love")
    with pytest.raises(SpecError, match="rating: must be 1-5"):
        store.set_verdict("a", mine.id, "rate", rating=9)
    with pytest.raises(NotFound):
        store.add(_take("b", parent=mine.id))  # a parent from another session
    assert store.get("a", mine.id).verdict == ""
    assert store.verdicts("a") == [] and len(store.history("b")) == 1


def test_migrations_run_once_and_are_recorded(open_same) -> None:
    stores: list[TakeStore] = []
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            stores.append(open_same())
        except BaseException as error:  # reported below, with the other openers' results
            errors.append(error)

    threads = [threading.Thread(target=opener) for _ in range(3)]  # three replicas starting at once
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {s.schema_version for s in stores} == {len(MIGRATIONS)}
    recorded = stores[0]._transaction(lambda db: db.execute("SELECT version FROM schema_version").fetchall())
    assert sorted(r["version"] for r in recorded) == list(range(1, len(MIGRATIONS) + 1))
    open_same()  # opening a current database again changes nothing
    assert stores[0]._transaction(lambda db: db.execute("SELECT COUNT(*) AS n FROM schema_version").fetchone()["n"]) \
        == len(MIGRATIONS)


def test_two_writers_at_once_lose_nothing(open_same) -> None:
    stores = [open_same(), open_same()]  # two connections, as two engines would have
    written: list[str] = []
    lock = threading.Lock()

    def write(store: TakeStore) -> None:
        for _ in range(40):
            take = store.add(_take("shared"))
            store.set_verdict("shared", take.id, "keep")
            with lock:
                written.append(take.id)

    threads = [threading.Thread(target=write, args=(s,)) for s in stores for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reader = open_same()
    assert sorted(t.id for t in reader.history("shared")) == sorted(written)
    assert len(written) == 160 and len(reader.verdicts("shared")) == 160


def test_a_request_id_makes_one_take(open_same) -> None:
    store = open_same()
    first = store.add(_take("s", request_id="req-1"))
    again = store.add(_take("s", request_id="req-1"))  # a retry that made its own clip
    assert again == first and store.by_request("s", "req-1") == first
    assert store.by_request("s", "req-2") is None and store.by_request("nobody", "req-1") is None
    other_session = store.add(_take("t", request_id="req-1"))  # ids are per session
    assert other_session.session == "t" and other_session.id != first.id
    store.add(_take("s"))
    store.add(_take("s"))  # takes without an id never collide
    assert len(store.history("s")) == 3


def test_a_retried_verdict_is_logged_once(open_same) -> None:
    store = open_same()
    take = store.add(_take("v"))
    store.set_verdict("v", take.id, "reject", "too busy", request_id="v-1")
    again = store.set_verdict("v", take.id, "reject", "too busy", request_id="v-1")
    assert again.verdict == "reject" and len(store.verdicts("v")) == 1
    store.set_verdict("v", take.id, "keep", request_id="v-2")
    store.set_verdict("v", take.id, "keep")
    store.set_verdict("v", take.id, "keep")  # no id: every call is logged, as before
    assert [v["verdict"] for v in store.verdicts("v")] == ["reject", "keep", "keep", "keep"]


def test_racing_attempts_with_one_request_id_make_one_take(open_same) -> None:
    stores = [open_same() for _ in range(4)]
    results: list[Take] = []
    barrier = threading.Barrier(len(stores) * 2)
    lock = threading.Lock()

    def attempt(store: TakeStore, request_id: str) -> None:
        barrier.wait()
        take = store.add(_take("race", request_id=request_id))
        with lock:
            results.append(take)

    for round_ in range(5):
        results.clear()
        threads = [threading.Thread(target=attempt, args=(s, f"r{round_}")) for s in stores for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 8 and len({t.id for t in results}) == 1, f"round {round_}: {results}"
        assert all(t.midi == results[0].midi for t in results)
    assert len(stores[0].history("race")) == 5


def test_open_store_picks_the_back_end_and_names_what_it_accepts(tmp_path: Path) -> None:
    folder = open_store(str(tmp_path / "state"))
    assert isinstance(folder, SqliteTakeStore) and folder.path == tmp_path / "state" / "sessions.sqlite"
    file = open_store(f"sqlite:///{tmp_path / 'x.sqlite'}")
    assert isinstance(file, SqliteTakeStore) and file.path == tmp_path / "x.sqlite"
    for bad in ("mysql://db/x", "sqlite://relative.sqlite", ""):
        with pytest.raises(StoreURLError, match=r"--store .*postgresql://"):
            open_store(bad)


def test_an_old_sqlite_file_is_migrated_forward(tmp_path: Path) -> None:
    """A sessions.sqlite made before schema_version (PRAGMA user_version=1) keeps its takes and gains request ids."""
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        db.execute(statement.format(**SqliteTakeStore.DIALECT))
    db.execute("INSERT INTO sessions VALUES ('old', 1.0)")
    db.execute("INSERT INTO takes(id, session, parent, operation, params, spec, seed, model_version, midi, created, "
               "features) VALUES ('t1', 'old', NULL, 'generate', '{}', x'00', 1, 'm', x'4d546864', 1.0, '{}')")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    store = SqliteTakeStore(path)
    assert store.schema_version == len(MIGRATIONS)
    assert [t.id for t in store.history("old")] == ["t1"] and store.history("old")[0].request_id is None
    assert store.add(_take("old", request_id="x")).request_id == "x"
