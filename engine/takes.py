"""Sessions and takes: every result the engine makes, its parent, the operation and the verdict.

`TakeStore` is the interface (a PostgreSQL back end can implement it later); `SqliteTakeStore`
is the standard-library back end: WAL mode, one transaction per take or verdict, so a kill -9
leaves whole takes or none. The schema carries a version (PRAGMA user_version) and is migrated
forward on open.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from engine.errors import SpecError

STORE_FILE = "sessions.sqlite"
VERDICTS = ("keep", "reject", "rate")
RATING_MIN, RATING_MAX = 1, 5


class NotFound(LookupError):
    """A session or take that does not exist (NOT_FOUND over gRPC)."""


@dataclass(frozen=True)
class Take:
    """One result: the clip as SMF bytes and how it was made."""

    id: str
    session: str
    parent: str | None
    operation: str          # generate, vary, infill, continue, accompany, rearrange
    params: dict            # the operation's arguments, as asked
    spec: bytes             # the resolved MusicSpec (protobuf bytes)
    seed: int
    model_version: str
    midi: bytes
    created: float
    features: dict = field(default_factory=dict)
    verdict: str = ""       # "", keep, reject
    reason: str = ""
    rating: int = 0         # 0 = not rated, else 1-5


class TakeStore(Protocol):
    """What the engine needs from a store of sessions and takes."""

    def add(self, take: Take) -> Take: ...
    def get(self, session: str, take_id: str) -> Take: ...
    def history(self, session: str) -> list[Take]: ...
    def set_verdict(self, session: str, take_id: str, verdict: str, reason: str = "", rating: int = 0) -> Take: ...
    def verdicts(self, session: str) -> list[dict]: ...
    def update_features(self, take_id: str, features: dict) -> None: ...


def new_take_id() -> str:
    """A short id, unique across sessions."""
    return uuid.uuid4().hex[:10]


# Each entry upgrades the schema by one version; user_version records how many have run.
MIGRATIONS = (
    """
    CREATE TABLE sessions (name TEXT PRIMARY KEY, created REAL NOT NULL);
    CREATE TABLE takes (
        id TEXT PRIMARY KEY, session TEXT NOT NULL REFERENCES sessions(name), parent TEXT,
        operation TEXT NOT NULL, params TEXT NOT NULL, spec BLOB NOT NULL, seed INTEGER NOT NULL,
        model_version TEXT NOT NULL, midi BLOB NOT NULL, created REAL NOT NULL, features TEXT NOT NULL,
        verdict TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '', rating INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX takes_session ON takes(session, created);
    CREATE TABLE verdicts (
        id INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL, take TEXT NOT NULL REFERENCES takes(id),
        verdict TEXT NOT NULL, reason TEXT NOT NULL, rating INTEGER NOT NULL, created REAL NOT NULL);
    """,
)


class SqliteTakeStore:
    """Sessions and takes in one SQLite file (WAL), safe for the engine's worker threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()  # one connection, serialised; other processes wait on SQLite's lock
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in filter(str.strip, script.split(";")):
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version={number}")
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise

    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _transaction(self, work):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._db)
                self._db.execute("COMMIT")
                return result
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def add(self, take: Take) -> Take:
        """Store a take (and its session, if new) in one transaction."""
        def work(db: sqlite3.Connection) -> Take:
            db.execute("INSERT OR IGNORE INTO sessions(name, created) VALUES (?, ?)", (take.session, take.created))
            if take.parent is not None:
                _row(db, take.session, take.parent)  # the parent must be this session's
            db.execute(
                "INSERT INTO takes(id, session, parent, operation, params, spec, seed, model_version, midi, created, "
                "features) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (take.id, take.session, take.parent, take.operation, json.dumps(take.params), take.spec,
                 int(take.seed), take.model_version, take.midi, take.created, json.dumps(take.features)))
            return take
        return self._transaction(work)

    def get(self, session: str, take_id: str) -> Take:
        with self._lock:
            return _take(_row(self._db, session, take_id))

    def history(self, session: str) -> list[Take]:
        """Every take of the session, oldest first; NotFound for an unknown session."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM sessions WHERE name=?", (session,)).fetchone() is None:
                raise NotFound(f"no session named {session!r} (a session starts with its first generate)")
            rows = self._db.execute("SELECT * FROM takes WHERE session=? ORDER BY created, rowid", (session,))
            return [_take(row) for row in rows.fetchall()]

    def set_verdict(self, session: str, take_id: str, verdict: str, reason: str = "", rating: int = 0) -> Take:
        """Record keep/reject/rate on a take of this session; the verdict log keeps every one."""
        if verdict not in VERDICTS:
            raise SpecError("verdict", f"must be one of {', '.join(VERDICTS)}, got {verdict!r}")
        if verdict == "rate" and not RATING_MIN <= rating <= RATING_MAX:
            raise SpecError("rating", f"must be {RATING_MIN}-{RATING_MAX}, got {rating}")

        def work(db: sqlite3.Connection) -> Take:
            _row(db, session, take_id)
            now = time.time()
            if verdict == "rate":
                db.execute("UPDATE takes SET rating=? WHERE id=?", (rating, take_id))
            else:
                db.execute("UPDATE takes SET verdict=?, reason=? WHERE id=?", (verdict, reason, take_id))
            db.execute("INSERT INTO verdicts(session, take, verdict, reason, rating, created) VALUES (?,?,?,?,?,?)",
                       (session, take_id, verdict, reason, rating, now))
            return _take(_row(db, session, take_id))
        return self._transaction(work)

    def update_features(self, take_id: str, features: dict) -> None:
        """Merge late-computed features (the model's likelihood) into a stored take."""
        def work(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT features FROM takes WHERE id=?", (take_id,)).fetchone()
            if row is not None:
                merged = {**json.loads(row["features"]), **features}
                db.execute("UPDATE takes SET features=? WHERE id=?", (json.dumps(merged), take_id))
        self._transaction(work)

    def verdicts(self, session: str) -> list[dict]:
        """The session's verdicts in order, each with the take's features (what the taste learns from)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT v.take, v.verdict, v.reason, v.rating, v.created, t.features FROM verdicts v "
                "JOIN takes t ON t.id = v.take WHERE v.session=? ORDER BY v.id", (session,)).fetchall()
        return [{"take": r["take"], "verdict": r["verdict"], "reason": r["reason"], "rating": r["rating"],
                 "created": r["created"], "features": json.loads(r["features"])} for r in rows]


def _row(db: sqlite3.Connection, session: str, take_id: str) -> sqlite3.Row:
    row = db.execute("SELECT * FROM takes WHERE id=?", (take_id,)).fetchone()
    if row is None:
        raise NotFound(f"no take {take_id!r} (see `cadenza history`)")
    if row["session"] != session:
        raise NotFound(f"take {take_id!r} is not in session {session!r}")
    return row


def _take(row: sqlite3.Row) -> Take:
    return Take(id=row["id"], session=row["session"], parent=row["parent"], operation=row["operation"],
                params=json.loads(row["params"]), spec=bytes(row["spec"]), seed=row["seed"],
                model_version=row["model_version"], midi=bytes(row["midi"]), created=row["created"],
                features=json.loads(row["features"]), verdict=row["verdict"], reason=row["reason"],
                rating=row["rating"])


STATE_ENV = "CADENZA_STATE"


def default_state_dir() -> Path:
    """$CADENZA_STATE, else the user's data directory for Cadenza (platformdirs)."""
    import os

    import platformdirs

    if os.environ.get(STATE_ENV):
        return Path(os.environ[STATE_ENV])
    return Path(platformdirs.user_data_dir("cadenza", appauthor=False))


def open_store(state_dir: Path | None = None) -> SqliteTakeStore:
    """The store in ``state_dir`` (default: the user's data directory)."""
    return SqliteTakeStore(Path(state_dir or default_state_dir()) / STORE_FILE)
