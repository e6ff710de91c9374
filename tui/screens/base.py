"""What every Techne screen shares: the app as screens see it (never `tui.app` itself, so the
app can import its screens and not the other way round), the narrow and short layouts, and
keys known only at run time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from textual.binding import Binding, BindingType
from textual.events import Resize
from textual.screen import Screen

if TYPE_CHECKING:
    from store import CodebookView, Repository, Workspace
    from store.artifacts import ModelVersionView

NARROW = 100
"""At this many columns or fewer a screen takes its narrow layout (class `narrow`)."""
SHORT = 32
"""At this many rows or fewer a screen takes its short layout (class `short`)."""


class Techne(Protocol):
    """The app as its screens use it (tui.app.TechneApp is one)."""

    workspace: Workspace
    repo: Repository
    annotator: str
    codebook: CodebookView
    blind: bool
    context_before: int
    context_after: int
    """Turns shown before and after the message being coded."""
    active_model: ModelVersionView | None

    def learning_settings(self) -> Any: ...


def choose_bindings(codebook: CodebookView) -> list[BindingType]:
    """A technique's letter and (the first nine) its digit choose it; hidden from the footer."""
    bindings: list[BindingType] = []
    for index, technique in enumerate(codebook.techniques):
        if technique.hotkey:
            bindings.append(Binding(technique.hotkey, f"choose({index})", show=False))
        if index < 9:
            bindings.append(Binding(str(index + 1), f"choose({index})", show=False))
    return bindings


S = TypeVar("S", bound="TechneScreen")


class TechneScreen(Screen[None]):
    """A screen of the Techne app."""

    @property
    def techne(self) -> Techne:
        return cast("Techne", self.app)

    @property
    def narrow(self) -> bool:
        return self.has_class("narrow")

    def on_resize(self, event: Resize) -> None:
        """Narrow and short terminals get their own layouts (see app.tcss)."""
        self.set_class(event.size.width <= NARROW, "narrow")
        self.set_class(event.size.height <= SHORT, "short")

    @classmethod
    def with_keys(cls: type[S], extra: list[BindingType]) -> type[S]:
        """This screen with more keys after its own (the workspace's [keys], a codebook's
        hotkeys): Textual reads bindings from the class, so the keys make a subclass."""
        own = list(cls.__dict__.get("BINDINGS", []))
        return type(cls.__name__, (cls,), {"BINDINGS": [*own, *extra]})
