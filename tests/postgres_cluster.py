"""A throwaway PostgreSQL cluster for tests and benchmarks: initdb into a temp folder, pg_ctl start.

Debian's postgresql puts its server binaries in /usr/lib/postgresql/<major>/bin (not on PATH).
The server refuses to run as root, so as root it runs as the `postgres` OS user (runuser).
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator

BIN_ENV = "CADENZA_PG_BIN"


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def server_bin_dir() -> str:
    """$CADENZA_PG_BIN, else the newest /usr/lib/postgresql/*/bin holding initdb."""
    if os.environ.get(BIN_ENV):
        return os.environ[BIN_ENV]
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found and shutil.which("initdb"):
        return os.path.dirname(shutil.which("initdb"))
    if not found:
        raise PostgresMissing("PostgreSQL server binaries not found (apt-get install postgresql; .ci/run installs "
                              f"it) - or point ${BIN_ENV} at the folder holding initdb and pg_ctl")
    return os.path.dirname(found[-1])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_postgres(durable: bool = False) -> Iterator[str]:
    """A cluster listening on 127.0.0.1 and a socket in its temp folder; yields ``postgresql://cadenza@HOST:PORT``.

    ``durable=False`` turns fsync off (tests: faster, and a crash of the machine is not tested);
    benchmarks pass True so commits cost what they cost in production.
    """
    bin_dir = server_bin_dir()
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = tempfile.mkdtemp(prefix="cadenza-pg-")
    os.chmod(root, 0o777)  # the postgres user writes its cluster, log and socket here
    data = os.path.join(root, "data")
    port = _free_port()
    subprocess.run([*as_user, f"{bin_dir}/initdb", "-D", data, "-U", "cadenza", "--auth=trust", "-E", "UTF8",
                    "--no-sync"], check=True, capture_output=True)
    options = f"-k {root} -p {port} -c listen_addresses=127.0.0.1 -c max_connections=200"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off"
    started = subprocess.run([*as_user, f"{bin_dir}/pg_ctl", "-D", data, "-l", os.path.join(root, "log"),
                              "-o", options, "-w", "-t", "60", "start"], capture_output=True, text=True)
    try:
        if started.returncode != 0:
            log = open(os.path.join(root, "log")).read() if os.path.exists(os.path.join(root, "log")) else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stderr}\n{log}")
        yield f"postgresql://cadenza@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_user, f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def create_database(server_url: str) -> str:
    """A fresh empty database on the cluster; returns its URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return f"{server_url}/{name}"
