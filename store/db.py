"""Engine set-up: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL, and the schema."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, SQLModel, create_engine, select

from store import models
from store.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy import Table

SQLITE_BUSY_TIMEOUT_MS = 30_000
IN_CHUNK = 900
"""Values per `IN (...)` list: under SQLite's old limit of 999 bound parameters."""

DatabaseFailure = DBAPIError
"""What the database driver raises (disk full, connection lost, locked): the interface
reports it as one line without knowing SQLAlchemy."""

_APPEND_ONLY_SQLITE = [
    """CREATE TRIGGER IF NOT EXISTS annotation_events_no_update
       BEFORE UPDATE ON annotation_events
       BEGIN SELECT RAISE(ABORT, 'annotation events are append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS annotation_events_no_delete
       BEFORE DELETE ON annotation_events
       BEGIN SELECT RAISE(ABORT, 'annotation events are append-only'); END""",
]
_APPEND_ONLY_POSTGRES = [
    """CREATE OR REPLACE FUNCTION techne_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'annotation events are append-only'; END $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS annotation_events_append_only ON annotation_events",
    """CREATE TRIGGER annotation_events_append_only
       BEFORE UPDATE OR DELETE ON annotation_events
       FOR EACH ROW EXECUTE FUNCTION techne_append_only()""",
]


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of an SQLite file."""
    return f"sqlite:///{path.resolve()}"


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and route them through psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL + NORMAL survives a killed process; only power loss can drop the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: big imports keep their indexes hot
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names (None for other databases and in-memory stores)."""
    try:
        parsed = make_url(normalise_url(url))
    except Exception:
        return None
    name = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or name in ("", ":memory:"):
        return None
    if name.startswith("file:"):
        return None
    return Path(name)


def prepare_sqlite_file(url: str, *, create: bool) -> None:
    """Opening never creates a store by accident, and creating one makes it private.

    Without `create`, a missing SQLite file is an error (SQLite would make an empty one).
    With it, the file is made 0600 before SQLite writes to it; SQLite gives the `-wal`
    and `-shm` files beside it the same mode.
    """
    path = sqlite_file(url)
    if path is None or path.exists():
        return
    if not create:
        raise StoreError(f"no Techne store at {path}: run `techne init` first, or check --db")
    if not path.parent.is_dir():
        raise StoreError(f"{path.parent}: no such folder for the store")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


@contextmanager
def writing(engine: Engine, conflict: str) -> Iterator[Connection]:
    """One write transaction. SQLite takes the write lock up front (BEGIN IMMEDIATE), so a
    second writer waits for the first instead of failing on its stale snapshot. A unique-key
    clash (only a concurrent writer gets one past the callers' checks) becomes a StoreError
    saying `conflict`; nothing of the transaction is kept."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.begin()
        try:
            yield conn
        except IntegrityError:
            conn.rollback()
            raise StoreError(conflict) from None
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def insert_ignoring(conn: Connection, table: Table, key: str) -> Any:
    """INSERT INTO `table` ... ON CONFLICT (`key`) DO NOTHING, for SQLite or PostgreSQL."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing(index_elements=[key])
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing(index_elements=[key])


def insert_or_get(conn: Connection, table: Table, key: str, values: dict[str, Any]) -> int:
    """The id of the row whose unique `key` column equals `values[key]`, inserting it first
    if missing: INSERT ... ON CONFLICT DO NOTHING, then SELECT. Two writers creating the
    same row at once both get its one id instead of a unique-constraint error."""
    conn.execute(insert_ignoring(conn, table, key).values(**values))
    found = conn.execute(core_select(table.c.id).where(table.c[key] == values[key])).scalar_one()
    return int(found)


def make_engine(url: str) -> Engine:
    """Create an engine for `url`. Nothing is created or migrated here."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
        raise StoreError(f"not a database URL: {url!r} ({exc})") from exc
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True)
    raise StoreError(
        f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL"
    )


def create_schema(engine: Engine) -> None:
    """Create all tables and the append-only guards; safe to call on an existing store."""
    SQLModel.metadata.create_all(engine)
    statements = _APPEND_ONLY_SQLITE if engine.dialect.name == "sqlite" else _APPEND_ONLY_POSTGRES
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    with Session(engine) as session:
        if session.get(models.StoreInfo, "schema_version") is None:
            session.add(models.StoreInfo(key="schema_version", value=str(models.SCHEMA_VERSION)))
            session.add(models.StoreInfo(key="created_at", value=models.utcnow().isoformat()))
            session.commit()


def check_schema(engine: Engine) -> None:
    """Fail clearly when the database is missing its schema or comes from a newer Techne."""
    try:
        with Session(engine) as session:
            row = session.exec(
                select(models.StoreInfo).where(models.StoreInfo.key == "schema_version")
            ).first()
    except Exception as exc:
        cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        if "no such table" in cause or "does not exist" in cause:
            hint = " Run `techne init` first?"
        elif "disk" in cause or "unable to open" in cause or "readonly" in cause:
            hint = " Is the disk full, or the folder not writable?"
        else:
            hint = ""
        raise StoreError(
            f"cannot read the Techne store at {engine.url.render_as_string(hide_password=True)}: "
            f"{cause}.{hint}"
        ) from exc
    if row is None:
        raise StoreError("the database has no Techne schema: run `techne init` first")
    if int(row.value) > models.SCHEMA_VERSION:
        raise StoreError(
            f"the store has schema version {row.value}; this Techne knows {models.SCHEMA_VERSION}."
            " Upgrade Techne."
        )
    if int(row.value) < models.SCHEMA_VERSION:
        _upgrade(engine)


_ADDED_COLUMNS = [("annotation_events", "role", "VARCHAR")]
"""Columns added to existing tables since schema 1: (table, column, SQL type), all nullable.
Adding a column is not an UPDATE, so the append-only triggers allow it; old rows read NULL."""


def _upgrade(engine: Engine) -> None:
    """Bring an older store up to date: add the missing tables, then the missing columns."""
    from sqlalchemy import inspect

    SQLModel.metadata.create_all(engine)
    inspector = inspect(engine)
    with engine.begin() as conn:
        for table, column, sql_type in _ADDED_COLUMNS:
            if column not in {c["name"] for c in inspector.get_columns(table)}:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}"))
    with Session(engine) as session:
        info = session.get(models.StoreInfo, "schema_version")
        assert info is not None
        info.value = str(models.SCHEMA_VERSION)
        session.add(info)
        session.commit()


def driver_sql(conn: Any, sql: str) -> str:
    """`sql` written with `?` placeholders, as this connection's driver wants them: SQLite
    takes `?`, psycopg `%s`. Every statement sent below SQLAlchemy goes through here."""
    return sql if conn.dialect.paramstyle == "qmark" else sql.replace("?", "%s")


def in_chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[list[Any]]:
    """`items` in lists of at most `size`: the values of one `IN (...)` each."""
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def raw_rows(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """All rows of a query straight from the driver's cursor. For scans of 100,000s of rows,
    where SQLAlchemy's per-row result handling costs more than the database. `sql` uses `?`
    placeholders (see driver_sql)."""
    sql = driver_sql(conn, sql)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()
