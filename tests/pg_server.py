"""A throw-away PostgreSQL server for tests (import the fixtures into a test module).

``pg_server`` (session scope) runs ``initdb`` into a temporary folder, starts the server with
``pg_ctl`` on a free port of 127.0.0.1 (socket in the same folder, trust authentication) and
yields a ``PgServer``; afterwards it stops the server and removes the folder. The server binaries
refuse to run as root, so as root they run as the ``postgres`` system user (``runuser``).
``pg_url`` (function scope) creates a fresh, empty database on it and yields its URL. Import
them by their function names (``from pg_server import pg_server_fixture, pg_url_fixture``);
tests ask for them as ``pg_server`` and ``pg_url``.

Tests are skipped, with the reason, only where no server binaries exist on this machine.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (newest version), or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0)
    for folder in reversed(candidates):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PgServer:
    bin_dir: Path
    folder: Path
    port: int
    user: str

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"fluoro_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _run_as(user: str | None, args: list[str]) -> subprocess.CompletedProcess:
    command = ["runuser", "-u", user, "--", *args] if user else args
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd="/")


@pytest.fixture(scope="session", name="pg_server")
def pg_server_fixture() -> Iterator[PgServer]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'psycopg[binary]'")
    run_as = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="fluoro-pg-"))
    if run_as:
        entry = pwd.getpwnam(run_as)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    folder.chmod(0o700)
    data, log = folder / "data", folder / "server.log"
    user = run_as or pwd.getpwuid(os.geteuid()).pw_name
    port = _free_port()
    try:
        done = _run_as(run_as, [str(bin_dir / "initdb"), "-D", str(data), "-U", user,
                                "--auth=trust", "-E", "UTF8", "--no-sync"])
        assert done.returncode == 0, f"initdb failed: {done.stderr}"
        options = f"-k {folder} -p {port} -h 127.0.0.1 -c fsync=off"
        done = _run_as(run_as, [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log),
                                "-o", options, "-w", "-t", "60", "start"])
        assert done.returncode == 0, (f"pg_ctl start failed: {done.stderr}"
                                      f"{log.read_text() if log.exists() else ''}")
        try:
            yield PgServer(bin_dir, folder, port, user)
        finally:
            _run_as(run_as, [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                             "stop"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(name="pg_url")
def pg_url_fixture(pg_server: PgServer) -> str:
    return pg_server.create_database()
