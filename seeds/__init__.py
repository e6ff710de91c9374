"""Bundled data: codebooks (label schemes) and the demo corpus. Ships inside the wheel."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
CODEBOOKS = ROOT / "codebooks"
DEMO = ROOT / "demo"

__all__ = ["CODEBOOKS", "DEMO", "builtin_codebooks", "codebook_path", "demo_corpus"]


def builtin_codebooks() -> list[str]:
    """Names of the bundled codebooks (file stems)."""
    return sorted(p.stem for p in CODEBOOKS.glob("*.toml"))


def codebook_path(name: str) -> Path | None:
    """Path of a bundled codebook, or None when there is none of that name."""
    path = CODEBOOKS / f"{name}.toml"
    return path if path.is_file() else None


def demo_corpus() -> Path:
    """The demo corpus (JSONL, one message a line)."""
    return DEMO / "conversations.jsonl"
