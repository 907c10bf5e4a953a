"""A real PostgreSQL server on a loopback port for the tests that need one (its binaries are on the
machine: Debian's postgresql package puts them in /usr/lib/postgresql/<version>/bin)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def _bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """A cluster in a temporary directory; `stop()` and `start()` simulate an outage."""

    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.base = tempfile.mkdtemp(prefix="llmswitch-pg-")
        self.run_as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root: use the postgres (or nobody) account
            user = "postgres" if _has_user("postgres") else "nobody"
            entry = pwd.getpwnam(user)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
            self.run_as = ["runuser", "-u", user, "--"]
        self.data, self.port = os.path.join(self.base, "data"), _free_port()
        self.url = f"postgresql://llmswitch@127.0.0.1:{self.port}/postgres"
        self._pg(
            [
                f"{bindir}/initdb",
                "-D",
                self.data,
                "-U",
                "llmswitch",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )

    def _pg(self, argv: list[str]) -> None:
        subprocess.run([*self.run_as, *argv], check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg(
            [f"{self.bindir}/pg_ctl", "-D", self.data, "-o", options, "-l", f"{self.base}/log", "-w", "start"]
        )

    def stop(self) -> None:
        self._pg([f"{self.bindir}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"])

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._pg([f"{self.bindir}/pg_ctl", "-D", self.data, "-m", "immediate", "stop"])
        shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A fresh running cluster (`.url`: `postgresql://llmswitch@127.0.0.1:<port>/postgres`), then removed."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL binaries not found")
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.remove()


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
