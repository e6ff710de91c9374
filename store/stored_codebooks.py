"""Codebooks in the store: installing a spec (techniques added, never removed) and reading one."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from store import models as m
from store.codebooks import CodebookSpec
from store.domain import CodebookView, TechniqueView
from store.errors import StoreError


def install_codebook(engine: Engine, spec: CodebookSpec) -> None:
    """Store a codebook, or bring a stored one up to date with `spec` (techniques are
    added or redefined, never removed: old labels must keep meaning something)."""
    with Session(engine, expire_on_commit=False) as s:
        book = s.exec(select(m.Codebook).where(m.Codebook.key == spec.key)).first()
        if book is None:
            book = m.Codebook(key=spec.key, name=spec.name)
        book.name, book.version = spec.name, spec.version
        book.description, book.multi_label = spec.description, spec.multi_label
        s.add(book)
        s.flush()
        assert book.id is not None
        existing = {
            t.key: t for t in s.exec(select(m.Technique).where(m.Technique.codebook_id == book.id))
        }
        missing = set(existing) - set(spec.technique_keys())
        if missing:
            raise StoreError(
                f"codebook '{spec.key}' is stored with techniques {sorted(missing)} that "
                f"{spec.source or 'the new version'} drops; techniques are never removed"
            )
        for position, t in enumerate(spec.techniques):
            row = existing.get(t.key) or m.Technique(codebook_id=book.id, key=t.key, name=t.name)
            row.name, row.definition, row.examples = t.name, t.definition, list(t.examples)
            row.hotkey, row.target, row.position = t.hotkey, t.target, position
            s.add(row)
        s.commit()


def read_codebook(engine: Engine, key: str) -> CodebookView:
    """The stored codebook `key` with its techniques in order."""
    with Session(engine) as s:
        book = s.exec(select(m.Codebook).where(m.Codebook.key == key)).first()
        if book is None:
            known = ", ".join(codebook_keys(engine)) or "none"
            raise StoreError(f"no codebook '{key}' in the store (stored: {known})")
        rows = s.exec(
            select(m.Technique)
            .where(m.Technique.codebook_id == book.id)
            .order_by(col(m.Technique.position))
        ).all()
        return CodebookView(
            key=book.key,
            name=book.name,
            version=book.version,
            description=book.description,
            multi_label=book.multi_label,
            techniques=tuple(
                TechniqueView(t.key, t.name, t.definition, tuple(t.examples), t.hotkey, t.target)
                for t in rows
            ),
        )


def codebook_keys(engine: Engine) -> list[str]:
    """Keys of every stored codebook, sorted."""
    with Session(engine) as s:
        return list(s.exec(select(m.Codebook.key).order_by(m.Codebook.key)))
