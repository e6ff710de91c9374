"""small-text without its torch integrations, for the embed backend.

`import small_text` imports torch and transformers whenever they are installed (about 5 s
of a cold `techne retrain`), although its core (datasets, SklearnClassifier, query
strategies) never uses them. When torch is not loaded yet, small-text is imported while
an import hook hides torch and transformers, so it skips those integrations; they stay
importable by their full module paths (`small_text.integrations.transformers...`), which
is how the finetune backend imports them.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

HIDDEN = ("torch", "transformers")
PRELOAD = (
    "packaging.version",
    "scipy.sparse",
    "scipy.stats",
    "sklearn.base",
    "sklearn.cluster",
    "sklearn.exceptions",
    "sklearn.metrics",
    "sklearn.multiclass",
    "sklearn.preprocessing",
    "sklearn.svm",
    "sklearn.utils.multiclass",
    "sklearn.utils.validation",
)
"""What small-text's core imports from other packages, imported before torch is hidden so
that none of them sees torch missing and remembers it."""
_lock = threading.Lock()


class _HideTorch:
    """A meta-path finder that fails imports of the HIDDEN packages in one thread only (the
    one loading small-text): any other thread may import torch meanwhile."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, name: str, path: Sequence[str] | None, target: Any = None) -> None:
        if name.split(".")[0] in HIDDEN and threading.get_ident() == self.thread:
            raise ModuleNotFoundError(f"{name} is hidden while small-text loads", name=name)
        return None


def prefetch() -> None:
    """Start loading small-text (and scikit-learn, 1-2 s in a fresh process) in the
    background, so that it overlaps a round's reading of the store."""
    if "small_text" not in sys.modules:
        threading.Thread(target=load, name="techne-prefetch", daemon=True).start()


def load() -> ModuleType:
    """The small_text package, imported without torch unless torch is already loaded."""
    with _lock:
        if "small_text" in sys.modules:
            return sys.modules["small_text"]
        if any(name in sys.modules for name in HIDDEN):
            import small_text

            return small_text
        for name in PRELOAD:
            importlib.import_module(name)
        hook = _HideTorch()
        sys.meta_path.insert(0, hook)
        try:
            import small_text
        finally:
            sys.meta_path.remove(hook)
        return small_text
