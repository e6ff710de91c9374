"""A workspace: a folder with `techne.toml` and, by default, an SQLite `techne.db`."""

from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.errors import WorkspaceError

if TYPE_CHECKING:  # both pull in SQLAlchemy; loaded when used, so `techne --help` stays fast
    from store.repository import Repository
    from store.team import TeamPolicy

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700
"""Clinical text is PHI: what Techne creates is for its owner only."""
CONFIG_NAME = "techne.toml"
DB_NAME = "techne.db"
ENV_WORKSPACE = "TECHNE_WORKSPACE"
ENV_DB_URL = "TECHNE_DB_URL"

CONFIG_TEMPLATE = """\
# Techne workspace settings. Paths are relative to this file.

[workspace]
name = {name}
codebook = {codebook}           # key of the active codebook (stored in the database)
{db_line}

[import]
max_text_chars = 100000         # longest message accepted, in characters

[model]
encoder = "all-MiniLM-L6-v2"    # bundled offline; or a local Hugging Face model folder
backend = "embed"               # embed (frozen encoder + linear head) | finetune
device = "auto"                 # auto | cpu | cuda
# runtime = "auto"              # auto | torch | onnx | onnx-int8 (auto: torch on CUDA)
# context_mode = "around"       # none | previous | window | around; default: best measured
context_turns = 2               # turns in the window (around: turns on each side)
# members = 1                   # finetune: models per round (seeds averaged; each one trains)

[learning]
strategy = "auto"               # see `techne retrain --help`
batch_size = 20                 # messages queried per round
eval_share = 0.2                # share of labelled conversations held out for metrics
seed = 0
# self_training = true          # embed: also fit on the pool messages the model is surest of
# pseudo_confidence = 0.99      # probability such a message's prediction needs

[annotate]
context_before = 4              # previous turns shown above the message

[ui]
context_after = 1               # turns after the message, shown below it

[team]
overlap = 0.0                   # share of messages coded independently by two experts
overlap_coders = 2              # coders per overlap item
claim_minutes = 15              # a claimed message returns to the queue after this long

[export]
context_turns = 3               # previous turns written with each exported message

[keys]
# Rebind annotation keys, e.g. accept = "enter", skip = "s", undo = "u,ctrl+z"
"""


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Workspace:
    """A discovered workspace: its folder, parsed settings and database URL."""

    root: Path
    settings: dict[str, Any] = field(default_factory=dict)
    db_url: str = ""

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def codebook_key(self) -> str:
        return str(self.section("workspace").get("codebook", ""))

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def section(self, name: str) -> dict[str, Any]:
        """One `[section]` of techne.toml (empty when absent)."""
        value = self.settings.get(name, {})
        if not isinstance(value, dict):
            raise WorkspaceError(f"{self.config_path}: [{name}] must be a table")
        return value

    def team_policy(self) -> TeamPolicy:
        """Overlap share and claim lifetime from `[team]`."""
        from store.team import TeamPolicy

        return TeamPolicy.from_section(self.section("team"), f"{self.config_path} [team]")

    def open_repository(self) -> Repository:
        """The workspace's store, with its codebook and team policy."""
        from store.repository import Repository

        return Repository.open(self.db_url, codebook_key=self.codebook_key, team=self.team_policy())


def write_config(root: Path, *, name: str, codebook: str, db_url: str | None) -> Path:
    """Write a fresh techne.toml into `root` (which must not have one)."""
    path = root / CONFIG_NAME
    db_line = (
        f"db = {_toml_str(db_url)}"
        if db_url
        else f'# db = "postgresql://..."  # default: {DB_NAME}'
    )
    text = CONFIG_TEMPLATE.format(
        name=_toml_str(name), codebook=_toml_str(codebook), db_line=db_line
    )
    # Private whatever the umask: the settings may hold a database URL with a password.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def make_private_folder(path: Path) -> bool:
    """Create `path` (and missing parents) with the workspace folder itself 0700 whatever
    the umask; True if it was created, False if it was there already (left as it is)."""
    if path.exists():
        return False
    path.mkdir(parents=True, mode=PRIVATE_FOLDER)
    os.chmod(path, PRIVATE_FOLDER)
    return True


def load_settings(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise WorkspaceError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise WorkspaceError(f"{path}: cannot read: {exc.strerror}") from exc


def find_root(explicit: Path | None = None, cwd: Path | None = None) -> Path:
    """Find the workspace folder: explicit path, then $TECHNE_WORKSPACE, then cwd and parents."""
    if explicit is not None:
        if not (explicit / CONFIG_NAME).is_file():
            raise WorkspaceError(f"{explicit}: not a Techne workspace (no {CONFIG_NAME})")
        return explicit.resolve()
    env = os.environ.get(ENV_WORKSPACE)
    if env:
        path = Path(env)
        if not (path / CONFIG_NAME).is_file():
            raise WorkspaceError(
                f"${ENV_WORKSPACE}={env}: not a Techne workspace (no {CONFIG_NAME})"
            )
        return path.resolve()
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise WorkspaceError(
        f"no Techne workspace in {here} or its parents: run `techne init`, or pass --workspace"
    )


def resolve_db_url(root: Path, settings: dict[str, Any], override: str | None = None) -> str:
    """The database URL: --db, then $TECHNE_DB_URL, then techne.toml, then techne.db."""
    if override:
        return override
    env = os.environ.get(ENV_DB_URL)
    if env:
        return env
    configured = settings.get("workspace", {}).get("db")
    if configured:
        return str(configured)
    from store.db import sqlite_url

    return sqlite_url(root / DB_NAME)


def load_workspace(explicit: Path | None = None, db_override: str | None = None) -> Workspace:
    """Discover and parse a workspace."""
    root = find_root(explicit)
    settings = load_settings(root / CONFIG_NAME)
    return Workspace(
        root=root, settings=settings, db_url=resolve_db_url(root, settings, db_override)
    )


def init_workspace(
    path: Path,
    codebook: str,
    db: str | None,
    name: str | None = None,
    maintainer: str | None = None,
) -> Workspace:
    """Create a workspace folder with techne.toml, its database and codebook (a bundled
    name or a TOML file). Its creator (`maintainer`, default: the login name) is its
    maintainer, who may also adjudicate. A folder it created is removed again on failure."""
    import getpass

    from store.codebooks import find_codebook
    from store.repository import Repository

    spec = find_codebook(codebook)
    if (path / CONFIG_NAME).exists():
        raise WorkspaceError(f"{path} is already a Techne workspace ({CONFIG_NAME} exists)")
    created = make_private_folder(path)
    try:
        url = resolve_db_url(path, {"workspace": {"db": db}} if db else {})
        repo = Repository.open(url, create=True)
        try:
            repo.install_codebook(spec)
            repo.set_role(maintainer or getpass.getuser(), "maintainer")
        finally:
            repo.close()
        write_config(path, name=name or path.resolve().name, codebook=spec.key, db_url=db)
        make_private_folder(path / "models")
    except BaseException:
        if created:
            shutil.rmtree(path, ignore_errors=True)
        raise
    return load_workspace(path, db)
