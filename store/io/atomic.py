"""Write files atomically (temp file + rename) and private (mode 0600)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from store.errors import StoreError

FILE_MODE = 0o600
DIR_MODE = 0o700


@contextmanager
def atomic_path(path: Path, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename.

    The caller writes whatever it likes there (a file, or a folder when `directory`);
    permissions are tightened to owner-only before the rename. On failure nothing changes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        _restrict(tmp)
        if directory:
            if path.exists():
                # Swap through a unique aside name, so the old export is gone only once the
                # new one is in place. Callers decide whether `path` may be replaced.
                old = Path(
                    tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent)
                )
                old.rmdir()
                path.rename(old)
                tmp.rename(path)
                if old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    old.unlink(missing_ok=True)
            else:
                tmp.rename(path)
        else:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_writer(path: Path, *, newline: str | None = None) -> Iterator[IO[str]]:
    """A UTF-8 text handle whose content appears at `path` only if the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline=newline) as fh:
        yield fh


def check_target(path: Path, fmt: str, force: bool) -> None:
    """Where an export may go: into an existing folder; over nothing, or (with `force`) over
    a regular file (a folder for `hf`). Never over a device, FIFO or socket."""
    parent = path.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "no such folder"
        raise StoreError(f"{parent}: {what}; create it first")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    kind_ok = stat.S_ISDIR(mode) if fmt == "hf" else stat.S_ISREG(mode)
    if not kind_ok and not stat.S_ISDIR(mode) and not stat.S_ISREG(mode):
        raise StoreError(
            f"{path} is not a regular file (a device, FIFO or socket); not writing there"
        )
    if not force and kind_ok:
        raise StoreError(f"{path} exists; not replacing it (pass --force to replace it)")


def _restrict(path: Path) -> None:
    if path.is_dir():
        os.chmod(path, DIR_MODE)
        for root, dirs, files in os.walk(path):
            for d in dirs:
                os.chmod(os.path.join(root, d), DIR_MODE)
            for f in files:
                os.chmod(os.path.join(root, f), FILE_MODE)
    else:
        os.chmod(path, FILE_MODE)
