"""Codebook files (TOML): parse and validate into plain specs the repository can store."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.errors import CodebookError, WorkspaceError

if TYPE_CHECKING:
    from store.domain import CodebookView

KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
HOTKEY_RE = re.compile(r"^[a-z]$")
RESERVED_HOTKEYS = frozenset("bcfhjklnqrsuvz")
"""Letters the annotation screen uses for its own commands."""


@dataclass(frozen=True)
class TechniqueSpec:
    key: str
    name: str
    definition: str = ""
    examples: tuple[str, ...] = ()
    hotkey: str | None = None
    target: int | None = None


@dataclass(frozen=True)
class CodebookSpec:
    key: str
    name: str
    techniques: tuple[TechniqueSpec, ...]
    version: str = "1"
    description: str = ""
    multi_label: bool = False
    source: str = field(default="", compare=False)

    def technique_keys(self) -> list[str]:
        return [t.key for t in self.techniques]


def _need(table: dict[str, Any], name: str, kind: type, where: str) -> Any:
    if name not in table:
        raise CodebookError(f"{where}: missing field '{name}'")
    value = table[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CodebookError(
            f"{where}: field '{name}' must be {kind.__name__}, got {type(value).__name__}"
        )
    return value


def _optional(table: dict[str, Any], name: str, kind: type, where: str, default: Any) -> Any:
    if name not in table:
        return default
    return _need(table, name, kind, where)


def parse_codebook(data: dict[str, Any], source: str) -> CodebookSpec:
    """Validate a parsed codebook document; errors name the file and the field."""
    head = data.get("codebook")
    if not isinstance(head, dict):
        raise CodebookError(f"{source}: missing [codebook] table")
    where = f"{source} [codebook]"
    key = _need(head, "key", str, where)
    if not KEY_RE.match(key):
        raise CodebookError(f"{where}: key {key!r} must be lower_snake_case")
    raw_techniques = data.get("techniques")
    if not isinstance(raw_techniques, list) or not raw_techniques:
        raise CodebookError(f"{source}: needs at least one [[techniques]] entry")
    techniques: list[TechniqueSpec] = []
    seen_keys: dict[str, int] = {}
    seen_hotkeys: dict[str, str] = {}
    for index, raw in enumerate(raw_techniques, start=1):
        twhere = f"{source} [[techniques]] #{index}"
        if not isinstance(raw, dict):
            raise CodebookError(f"{twhere}: must be a table")
        tkey = _need(raw, "key", str, twhere)
        twhere = f"{source} technique '{tkey}'"
        if not KEY_RE.match(tkey):
            raise CodebookError(f"{twhere}: key must be lower_snake_case")
        if tkey in seen_keys:
            raise CodebookError(f"{twhere}: duplicate key (also technique #{seen_keys[tkey]})")
        seen_keys[tkey] = index
        hotkey = _optional(raw, "hotkey", str, twhere, None)
        if hotkey is not None:
            if not HOTKEY_RE.match(hotkey):
                raise CodebookError(f"{twhere}: hotkey {hotkey!r} must be one lowercase letter")
            if hotkey in RESERVED_HOTKEYS:
                raise CodebookError(
                    f"{twhere}: hotkey {hotkey!r} is an app command;"
                    f" reserved: {' '.join(sorted(RESERVED_HOTKEYS))}"
                )
            if hotkey in seen_hotkeys:
                raise CodebookError(
                    f"{twhere}: hotkey {hotkey!r} already used by '{seen_hotkeys[hotkey]}'"
                )
            seen_hotkeys[hotkey] = tkey
        examples = _optional(raw, "examples", list, twhere, [])
        if not all(isinstance(e, str) for e in examples):
            raise CodebookError(f"{twhere}: field 'examples' must be a list of strings")
        target = _optional(raw, "target", int, twhere, None)
        techniques.append(
            TechniqueSpec(
                key=tkey,
                name=_optional(raw, "name", str, twhere, tkey.replace("_", " ").capitalize()),
                definition=_optional(raw, "definition", str, twhere, "").strip(),
                examples=tuple(examples),
                hotkey=hotkey,
                target=target,
            )
        )
    return CodebookSpec(
        key=key,
        name=_optional(head, "name", str, where, key),
        version=str(_optional(head, "version", str, where, "1")),
        description=_optional(head, "description", str, where, "").strip(),
        multi_label=_optional(head, "multi_label", bool, where, False),
        techniques=tuple(techniques),
        source=source,
    )


def load_codebook_file(path: Path) -> CodebookSpec:
    """Read and validate a codebook TOML file."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise CodebookError(f"{path}: no such codebook file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CodebookError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise CodebookError(f"{path}: not UTF-8 text") from exc
    return parse_codebook(data, str(path))


def find_codebook(name_or_file: str) -> CodebookSpec:
    """A bundled codebook by name (mi, annomi, supportive) or a codebook TOML file."""
    import seeds

    path = seeds.codebook_path(name_or_file)
    if path is None:
        candidate = Path(name_or_file)
        if not candidate.suffix and not candidate.exists():
            raise WorkspaceError(
                f"no bundled codebook {name_or_file!r}; bundled: "
                f"{', '.join(seeds.builtin_codebooks())} (or pass a .toml file)"
            )
        path = candidate
    return load_codebook_file(path)


def spec_from_view(view: CodebookView) -> CodebookSpec:
    """The spec of a stored codebook, to install it in another store."""
    return CodebookSpec(
        key=view.key,
        name=view.name,
        version=view.version,
        description=view.description,
        multi_label=view.multi_label,
        techniques=tuple(
            TechniqueSpec(t.key, t.name, t.definition, t.examples, t.hotkey, t.target)
            for t in view.techniques
        ),
    )
