"""Sessions and takes: every result the engine makes, its parent, the operation and the verdict.

`TakeStore` is the one interface the engine uses. `SqlTakeStore` holds its queries, written once
in the SQL that SQLite and PostgreSQL share; a back end supplies the connection, the transactions
and the lock that serialises migrations:

- `SqliteTakeStore` (the default, one user): one file in WAL mode, one transaction per take or
  verdict, so a kill -9 leaves whole takes or none.
- `engine.sessions.store.postgres.PostgresTakeStore` (`--store postgresql://...`): many engine replicas
  sharing one database.

Both run the same `MIGRATIONS` on open, recorded in a `schema_version` table. A take may carry
the client's request id: UNIQUE (session, request_id) makes a retried request find the take its
first attempt made instead of making a second one.
"""
from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from engine import errors
from engine.errors import SpecError, Unavailable, UsageError

STORE_FILE = "sessions.sqlite"
VERDICTS = ("keep", "reject", "rate")
LAST = "last"                          # the take reference meaning the newest take
TAKE_REF = re.compile(r"[0-9a-f]{1,32}")  # take ids are hex (new_take_id); a reference is one or its start
AMBIGUOUS_SHOWN = 10
RATING_MIN, RATING_MAX = 1, 5
T = TypeVar("T")


class NotFound(errors.NotFound):
    """A session or take that does not exist (NOT_FOUND over gRPC)."""


class StoreURLError(UsageError):
    """A ``--store`` value that names no back end this engine has."""


class StoreUnavailable(Unavailable):
    """The store's database cannot be reached (UNAVAILABLE over gRPC: another replica may answer)."""


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
    request_id: str | None = None  # the client's id for the request that made it (None: not given)


class TakeStore(Protocol):
    """What the engine needs from a store of sessions and takes."""

    def add(self, take: Take) -> Take: ...
    def get(self, session: str, take_id: str) -> Take: ...
    def by_request(self, session: str, request_id: str) -> Take | None: ...
    def find(self, session: str, ref: str, any_session: bool = False) -> Take: ...
    def history(self, session: str) -> list[Take]: ...
    def set_verdict(self, session: str, take_id: str, verdict: str, reason: str = "", rating: int = 0,
                    request_id: str | None = None) -> Take: ...
    def verdicts(self, session: str) -> list[dict]: ...
    def update_features(self, take_id: str, features: dict) -> None: ...
    def close(self) -> None: ...


def new_take_id() -> str:
    """A short id, unique across sessions."""
    return uuid.uuid4().hex[:10]


# The schema, as data: each entry upgrades it by one version and is a list of statements in the
# SQL both back ends speak. The two words they spell differently are filled in per dialect
# ({bytes}: a byte string column; {serial}: an auto-numbered primary key). Never edit a step that
# has shipped: append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE sessions (name TEXT PRIMARY KEY, created DOUBLE PRECISION NOT NULL)",
        """CREATE TABLE takes (
            id TEXT PRIMARY KEY, session TEXT NOT NULL REFERENCES sessions(name), parent TEXT,
            operation TEXT NOT NULL, params TEXT NOT NULL, spec {bytes} NOT NULL, seed BIGINT NOT NULL,
            model_version TEXT NOT NULL, midi {bytes} NOT NULL, created DOUBLE PRECISION NOT NULL,
            features TEXT NOT NULL, verdict TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '',
            rating INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX takes_session ON takes(session, created)",
        """CREATE TABLE verdicts (
            id {serial}, session TEXT NOT NULL, take TEXT NOT NULL REFERENCES takes(id),
            verdict TEXT NOT NULL, reason TEXT NOT NULL, rating INTEGER NOT NULL, created DOUBLE PRECISION NOT NULL)""",
    ),
    (  # request ids: a retried request finds the take (or verdict) its first attempt made
        "ALTER TABLE takes ADD COLUMN request_id TEXT",
        "CREATE UNIQUE INDEX takes_request ON takes(session, request_id)",
        "ALTER TABLE verdicts ADD COLUMN request_id TEXT",
        "CREATE UNIQUE INDEX verdicts_request ON verdicts(session, request_id)",
    ),
)
SCHEMA_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied DOUBLE PRECISION NOT NULL)")


def migration_statements(step: Sequence[str], dialect: Mapping[str, str]) -> list[str]:
    """One migration step's statements in a back end's spelling."""
    return [statement.format(**dialect) for statement in step]


class Executor(Protocol):
    """A connection inside a transaction: ``execute`` with ``?`` placeholders, returning a cursor."""

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...


class SqlTakeStore:
    """The store's queries, once, over a back end's ``_transaction``.

    A back end implements ``_transaction(work)`` (run ``work(executor)`` in one transaction,
    retried never, rows readable by column name), ``_migrate()`` and ``close()``; it may give
    reads a cheaper ``_read(work)`` (one snapshot, no write lock).
    """

    HISTORY_ORDER = "created, id"  # oldest first; ties (same clock reading) broken by something stable
    ROW_LOCKS = False  # SELECT ... FOR UPDATE (PostgreSQL); SQLite's write transactions are exclusive anyway

    def _transaction(self, work: Callable[[Executor], T]) -> T:
        raise NotImplementedError

    def _read(self, work: Callable[[Executor], T]) -> T:
        return self._transaction(work)

    # -- schema ----------------------------------------------------------------------------
    def _apply_migrations(self, db: Executor, dialect: Mapping[str, str], start: int | None = None) -> int:
        """Run the steps not yet recorded in schema_version (the caller holds the migration lock)."""
        db.execute(SCHEMA_VERSION_TABLE)
        current = db.execute("SELECT MAX(version) AS v FROM schema_version").fetchone()["v"] or 0
        if start is not None and current == 0 and start > 0:  # an older SQLite file, versioned by PRAGMA
            for number in range(1, start + 1):
                db.execute("INSERT INTO schema_version(version, applied) VALUES (?, ?)", (number, time.time()))
            current = start
        for number, step in enumerate(MIGRATIONS[current:], start=current + 1):
            for statement in migration_statements(step, dialect):
                db.execute(statement)
            db.execute("INSERT INTO schema_version(version, applied) VALUES (?, ?)", (number, time.time()))
        return max(current, len(MIGRATIONS))

    @property
    def schema_version(self) -> int:
        """The newest migration recorded in the database."""
        return self._read(
            lambda db: db.execute("SELECT MAX(version) AS v FROM schema_version").fetchone()["v"] or 0)

    # -- takes -----------------------------------------------------------------------------
    def add(self, take: Take) -> Take:
        """Store a take (and its session, if new) in one transaction; returns the stored take.

        A take whose (session, request_id) is already stored is not added: the stored one is
        returned, also when two attempts race (the unique index decides, the loser reads).
        """
        def work(db: Executor) -> Take:
            db.execute("INSERT INTO sessions(name, created) VALUES (?, ?) ON CONFLICT DO NOTHING",
                       (take.session, take.created))
            if take.parent is not None:
                _row(db, take.session, take.parent)  # the parent must be this session's
            inserted = db.execute(
                "INSERT INTO takes(id, session, parent, operation, params, spec, seed, model_version, midi, created, "
                "features, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (session, request_id) DO NOTHING RETURNING id",
                (take.id, take.session, take.parent, take.operation, json.dumps(take.params), take.spec,
                 int(take.seed), take.model_version, take.midi, take.created, json.dumps(take.features),
                 take.request_id)).fetchone()
            if inserted is None:  # this request's take was made already
                return _take(db.execute("SELECT * FROM takes WHERE session=? AND request_id=?",
                                        (take.session, take.request_id)).fetchone())
            return take
        return self._transaction(work)

    def get(self, session: str, take_id: str) -> Take:
        return self._read(lambda db: _take(_row(db, session, take_id)))

    def find(self, session: str, ref: str, any_session: bool = False) -> Take:
        """The take ``ref`` names: its id, a unique start of it, or ``last`` (the newest take).

        Looked for in ``session``; with ``any_session`` also in every other session when this
        one has none (``last``: the newest take anywhere). NotFound names the session that holds
        a take asked for in the wrong one; an ambiguous prefix is a SpecError listing the takes.
        """
        ref = ref.strip().lower()
        if ref == LAST:
            return self._read(lambda db: _take(_newest(db, session, any_session)))
        if not TAKE_REF.fullmatch(ref):
            raise SpecError("take", f"must be a take id, the start of one (hex digits) or {LAST!r}, got {ref[:40]!r}")

        def work(db: Executor) -> Take:
            here = db.execute(f"SELECT * FROM takes WHERE session=? AND id LIKE ? ORDER BY id LIMIT {AMBIGUOUS_SHOWN}",
                              (session, ref + "%")).fetchall()
            everywhere = here or db.execute(
                f"SELECT * FROM takes WHERE id LIKE ? ORDER BY session, id LIMIT {AMBIGUOUS_SHOWN}",
                (ref + "%",)).fetchall()
            if here or (everywhere and any_session):
                rows = here or everywhere
                if len(rows) > 1:
                    listed = ", ".join(f"{r['id']} ({r['session']})" for r in rows)
                    raise SpecError("take", f"{ref!r} starts more than one take: {listed}; give more of the id")
                return _take(rows[0])
            if everywhere:
                holders = sorted({r["session"] for r in everywhere})
                raise NotFound(f"take {ref!r} is not in session {session!r}; it is in session "
                               f"{' and '.join(repr(h) for h in holders)} (pass --session {holders[0]}, or "
                               "leave --session out to look in every session)")
            raise NotFound(f"no take {ref!r} in any session (see `cadenza history`)")
        return self._read(work)

    def by_request(self, session: str, request_id: str) -> Take | None:
        """The take a request with this id made in this session, or None."""
        def work(db: Executor) -> Take | None:
            row = db.execute("SELECT * FROM takes WHERE session=? AND request_id=?", (session, request_id)).fetchone()
            return None if row is None else _take(row)
        return self._read(work)

    def history(self, session: str) -> list[Take]:
        """Every take of the session, oldest first; NotFound for an unknown session."""
        def work(db: Executor) -> list[Take]:
            if db.execute("SELECT 1 FROM sessions WHERE name=?", (session,)).fetchone() is None:
                raise NotFound(f"no session named {session!r} (a session starts with its first generate)")
            rows = db.execute(f"SELECT * FROM takes WHERE session=? ORDER BY {self.HISTORY_ORDER}", (session,))
            return [_take(row) for row in rows.fetchall()]
        return self._read(work)

    def set_verdict(self, session: str, take_id: str, verdict: str, reason: str = "", rating: int = 0,
                    request_id: str | None = None) -> Take:
        """Record keep/reject/rate on a take of this session; the verdict log keeps every one.

        A ``request_id`` already in the session's log records nothing more (a retried Verdict
        must not log the verdict twice: the taste counts every rejection's reason).
        """
        if verdict not in VERDICTS:
            raise SpecError("verdict", f"must be one of {', '.join(VERDICTS)}, got {verdict!r}")
        if verdict == "rate" and not RATING_MIN <= rating <= RATING_MAX:
            raise SpecError("rating", f"must be {RATING_MIN}-{RATING_MAX}, got {rating}")

        def work(db: Executor) -> Take:
            _row(db, session, take_id)
            logged = db.execute(
                "INSERT INTO verdicts(session, take, verdict, reason, rating, created, request_id) "
                "VALUES (?,?,?,?,?,?,?) ON CONFLICT (session, request_id) DO NOTHING RETURNING id",
                (session, take_id, verdict, reason, rating, time.time(), request_id or None)).fetchone()
            if logged is not None:  # None: this request's verdict is recorded already
                if verdict == "rate":
                    db.execute("UPDATE takes SET rating=? WHERE id=?", (rating, take_id))
                else:
                    db.execute("UPDATE takes SET verdict=?, reason=? WHERE id=?", (verdict, reason, take_id))
            return _take(_row(db, session, take_id))
        return self._transaction(work)

    def update_features(self, take_id: str, features: dict) -> None:
        """Merge late-computed features (the model's likelihood) into a stored take."""
        def work(db: Executor) -> None:
            row = db.execute("SELECT features FROM takes WHERE id=? FOR UPDATE" if self.ROW_LOCKS else
                             "SELECT features FROM takes WHERE id=?", (take_id,)).fetchone()
            if row is not None:
                merged = {**json.loads(row["features"]), **features}
                db.execute("UPDATE takes SET features=? WHERE id=?", (json.dumps(merged), take_id))
        self._transaction(work)

    def verdicts(self, session: str) -> list[dict]:
        """The session's verdicts in order, each with the take's features and parent (what the taste learns from)."""
        def work(db: Executor) -> list:
            return db.execute(
                "SELECT v.take, v.verdict, v.reason, v.rating, v.created, t.features, t.parent FROM verdicts v "
                "JOIN takes t ON t.id = v.take WHERE v.session=? ORDER BY v.id", (session,)).fetchall()
        return [{"take": r["take"], "verdict": r["verdict"], "reason": r["reason"], "rating": r["rating"],
                 "created": r["created"], "features": json.loads(r["features"]), "parent": r["parent"]}
                for r in self._read(work)]


class SqliteTakeStore(SqlTakeStore):
    """Sessions and takes in one SQLite file (WAL), safe for the engine's worker threads."""

    DIALECT = {"bytes": "BLOB", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT"}
    HISTORY_ORDER = "created, rowid"

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
        """Bring the schema up to date; BEGIN IMMEDIATE makes engines opening one file at once take turns."""
        def work(db: Executor) -> None:
            legacy = db.execute("PRAGMA user_version").fetchone()[0]
            version = self._apply_migrations(db, self.DIALECT, start=legacy)
            db.execute(f"PRAGMA user_version={version}")  # what engines before schema_version read
        self._transaction(work)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _transaction(self, work: Callable[[Executor], T]) -> T:
        return self._run(work, "BEGIN IMMEDIATE")  # the write lock at once: no upgrade deadlock between engines

    def _read(self, work: Callable[[Executor], T]) -> T:
        return self._run(work, "BEGIN DEFERRED")  # a WAL snapshot: readers never wait for a writer

    def _run(self, work: Callable[[Executor], T], begin: str) -> T:
        with self._lock:
            self._db.execute(begin)
            try:
                result = work(self._db)
                self._db.execute("COMMIT")
                return result
            except BaseException:
                self._db.execute("ROLLBACK")
                raise


def _row(db: Executor, session: str, take_id: str) -> Mapping[str, Any]:
    row = db.execute("SELECT * FROM takes WHERE id=?", (take_id,)).fetchone()
    if row is None:
        raise NotFound(f"no take {take_id!r} (see `cadenza history`)")
    if row["session"] != session:
        raise NotFound(f"take {take_id!r} is not in session {session!r}; it is in session {row['session']!r}")
    return row


def _newest(db: Executor, session: str, any_session: bool) -> Mapping[str, Any]:
    row = db.execute("SELECT * FROM takes WHERE session=? ORDER BY created DESC LIMIT 1", (session,)).fetchone()
    if row is None and any_session:
        row = db.execute("SELECT * FROM takes ORDER BY created DESC LIMIT 1").fetchone()
    if row is None:
        raise NotFound(f"no takes yet in session {session!r}" + (" or any other" if any_session else ""))
    return row


def _take(row: Mapping[str, Any]) -> Take:
    return Take(id=row["id"], session=row["session"], parent=row["parent"], operation=row["operation"],
                params=json.loads(row["params"]), spec=bytes(row["spec"]), seed=row["seed"],
                model_version=row["model_version"], midi=bytes(row["midi"]), created=row["created"],
                features=json.loads(row["features"]), verdict=row["verdict"], reason=row["reason"],
                rating=row["rating"], request_id=row["request_id"])


STATE_ENV = "CADENZA_STATE"


def default_state_dir() -> Path:
    """$CADENZA_STATE, else the user's data directory for Cadenza (platformdirs)."""
    import os

    import platformdirs

    if os.environ.get(STATE_ENV):
        return Path(os.environ[STATE_ENV])
    return Path(platformdirs.user_data_dir("cadenza", appauthor=False))
def store_name(store: str | None = None, state_dir: Path | str | None = None) -> str:
    """Where sessions live, spelled one way for comparing engines: a resolved folder, or the URL.

    ``store`` is ``--store`` (a URL or a folder), ``state_dir`` is ``--state``; with neither it is
    $CADENZA_STATE or the user's data folder, as `open_store` decides.
    """
    text = str(store).strip() if store else ""
    if "://" in text:
        return text
    return str(Path(text or state_dir or default_state_dir()).expanduser().resolve())
