"""The people who code: annotator rows and their roles."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from store import models as m
from store.db import insert_or_get
from store.errors import StoreError
from store.names import check_annotator_name


def ensure_annotator(engine: Engine, name: str, role: str = "expert") -> int:
    """The id of annotator `name`, created with `role` if new."""
    _check_role(role)
    name = check_annotator_name(name)
    with engine.begin() as conn:
        values = {"name": name, "role": role, "created_at": m.utcnow()}
        table = SQLModel.metadata.tables["annotators"]
        return insert_or_get(conn, table, "name", values)


def set_role(engine: Engine, name: str, role: str) -> None:
    """Give an annotator a role (creating them if new)."""
    _check_role(role)
    ensure_annotator(engine, name, role)
    with Session(engine, expire_on_commit=False) as s:
        row = s.exec(select(m.Annotator).where(m.Annotator.name == name.strip())).one()
        row.role = role
        s.add(row)
        s.commit()


def annotators(engine: Engine) -> dict[str, str]:
    """Annotator name -> role."""
    with Session(engine) as s:
        return {a.name: a.role for a in s.exec(select(m.Annotator).order_by(m.Annotator.name))}


def _check_role(role: str) -> None:
    if role not in m.ROLES:
        raise StoreError(f"role must be one of {', '.join(m.ROLES)}, got {role!r}")
