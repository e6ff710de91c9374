"""Keys of the annotate screen that open another screen: find, the whole conversation, help,
stats, agreement, adjudication, and quit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from store import MessageView
from tui.safe import shown
from tui.screens.base import TechneScreen
from tui.screens.find import FindScreen
from tui.screens.overlays import ConversationScreen, HelpScreen
from tui.screens.prompt import PromptScreen
from tui.session import Session

if TYPE_CHECKING:
    _Base = TechneScreen
else:
    _Base = object


class NavigationMixin(_Base):
    """Actions found by name along the AnnotateScreen's MRO."""

    if TYPE_CHECKING:
        session: Session
        current: MessageView | None

        def _show(self, message_id: int) -> None: ...

    def action_find(self) -> None:
        def searched(needle: str | None) -> None:
            if not needle:
                return
            matches = self.techne.repo.search(needle)
            if not matches:
                self.notify(f"No message contains {shown(needle)!r}.", markup=False)
                return
            self.app.push_screen(FindScreen(needle, matches), self._jump)

        self.app.push_screen(PromptScreen("Find messages containing", "text"), searched)

    def _jump(self, message_id: int | None) -> None:
        if message_id is None:
            return
        self.session.visit(message_id)
        self._show(message_id)

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(self.active_bindings))

    def action_conversation(self) -> None:
        if self.current is not None:
            app = self.techne
            turns = app.repo.conversation_messages(self.current.conversation_id)
            self.app.push_screen(ConversationScreen(turns, self.current.id))

    def action_stats(self) -> None:
        from tui.screens.stats import StatsScreen

        self.app.push_screen(StatsScreen())

    def action_agreement(self) -> None:
        from tui.screens.agreement import AgreementScreen

        self.app.push_screen(AgreementScreen())

    def action_adjudicate(self) -> None:
        """Leads and maintainers only; the annotate screen refreshes when they come back."""
        app = self.techne
        role = app.repo.annotators().get(app.annotator, "expert")
        if role not in ("lead", "maintainer"):
            self.notify(
                f"Only leads adjudicate; {shown(app.annotator)} is an {role}. A maintainer "
                f"gives the role: techne annotators add {shown(app.annotator)} --role lead",
                markup=False,
                timeout=8,
            )
            return
        from tui.screens.adjudicate import AdjudicateScreen

        self.app.push_screen(AdjudicateScreen.keyed(app.codebook)())

    def action_quit(self) -> None:
        self.app.exit()
