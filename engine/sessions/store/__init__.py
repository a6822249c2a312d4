"""The take store: one interface (`TakeStore`), SQLite and PostgreSQL back ends, `open_store` to pick one."""
from __future__ import annotations

from pathlib import Path

from engine.sessions.store.sql import (
    MIGRATIONS,
    RATING_MAX,
    RATING_MIN,
    STATE_ENV,
    STORE_FILE,
    VERDICTS,
    NotFound,
    SqliteTakeStore,
    SqlTakeStore,
    StoreUnavailable,
    StoreURLError,
    Take,
    TakeStore,
    default_state_dir,
    new_take_id,
    store_name,
)

__all__ = [
    "MIGRATIONS",
    "NotFound",
    "RATING_MAX",
    "RATING_MIN",
    "STATE_ENV",
    "STORE_FILE",
    "STORE_SCHEMES",
    "SqlTakeStore",
    "SqliteTakeStore",
    "StoreURLError",
    "StoreUnavailable",
    "Take",
    "TakeStore",
    "VERDICTS",
    "default_state_dir",
    "new_take_id",
    "open_store",
    "store_name",
]

STORE_SCHEMES = ("postgresql://", "postgres://", "sqlite:///")


def open_store(where: str | Path | None = None) -> TakeStore:
    """The store named by ``--store``: a ``postgresql://`` URL, ``sqlite:///PATH``, or a folder.

    A folder (default: the user's data directory, or $CADENZA_STATE) holds sessions.sqlite;
    ``sqlite:///PATH`` names the file itself (SQLAlchemy's spelling: four slashes before an
    absolute path). Anything else is a StoreURLError saying what is accepted.
    """
    if where is None or isinstance(where, Path):
        return SqliteTakeStore(Path(where or default_state_dir()) / STORE_FILE)
    text = str(where).strip()
    if text.startswith(("postgresql://", "postgres://")):
        from engine.sessions.store.postgres import PostgresTakeStore  # psycopg only when asked for

        return PostgresTakeStore(text)
    if text.startswith("sqlite:///"):
        return SqliteTakeStore(Path(text[len("sqlite:///"):]))  # sqlite:////abs, sqlite:///rel
    if not text or "://" in text:
        raise StoreURLError(f"--store {text!r} is not a store this engine knows; give a folder (sessions.sqlite "
                            "goes in it), sqlite:///PATH/TO/FILE.sqlite or postgresql://USER@HOST:PORT/DB")
    return SqliteTakeStore(Path(text).expanduser() / STORE_FILE)
