"""A throwaway PostgreSQL server for tests and benchmarks: initdb in a temp folder, unix socket."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

USER = "techne"


def find_bin(name: str) -> str | None:
    """A PostgreSQL binary on PATH or in Debian's versioned folders."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PostgresServer:
    """Start with `start()`, make databases with `new_database()`, end with `stop()`."""

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        """Keep fsync on (benchmarks); tests run with fsync off."""
        self.dir = Path(tempfile.mkdtemp(prefix="techne-pg-"))
        self.data = self.dir / "data"
        self.port = 20000 + os.getpid() % 20000
        self._as_root = os.geteuid() == 0

    def _run(self, args: list[str]) -> None:
        if self._as_root:
            # initdb refuses to run as root: hand the folder to the postgres user.
            cmd = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(_quote(a) for a in args)]
        else:
            cmd = args
        subprocess.run(cmd, check=True, capture_output=True, text=True)

    def start(self) -> PostgresServer:
        initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) not found")
        if self._as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        sync = [] if self.durable else ["--no-sync"]
        self._run([initdb, "-D", str(self.data), "-A", "trust", "-U", USER, "-E", "UTF8", *sync])
        opts = f"-k {self.dir} -p {self.port} -c listen_addresses= -c max_connections=200"
        if not self.durable:
            opts += " -c fsync=off"
        self._run(
            [pg_ctl, "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start"]
        )
        deadline = time.time() + 30
        while not (self.dir / f".s.PGSQL.{self.port}").exists():
            if time.time() > deadline:
                raise RuntimeError("PostgreSQL did not open its socket in 30 s")
            time.sleep(0.1)
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}@/{database}?host={self.dir}&port={self.port}"

    def new_database(self) -> str:
        """Create an empty database and return its URL."""
        return self._create()

    def clone_database(self, url: str) -> str:
        """A copy of the database at `url` (PostgreSQL's template copy); returns its URL."""
        return self._create(template=url.split("@/", 1)[1].split("?", 1)[0])

    def _create(self, template: str | None = None) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        copy = f' TEMPLATE "{template}"' if template else ""
        with psycopg.connect(
            host=str(self.dir), port=self.port, user=USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def stop(self) -> None:
        pg_ctl = find_bin("pg_ctl")
        if pg_ctl and self.data.exists():
            try:
                self._run([pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"])
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"
