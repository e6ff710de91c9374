"""Names a user chooses (query strategies), checked before any training or encoding starts."""

from __future__ import annotations

from collections.abc import Iterable

from learning.strategies import STRATEGIES, StrategyError


def known_strategies() -> tuple[str, ...]:
    """Every strategy name the registry in learning.strategies knows, in its order."""
    return tuple(STRATEGIES)


def check_strategy(name: str, where: str = "strategy") -> str:
    """`name` when it is a known strategy; otherwise a one-line StrategyError that says
    where the name came from (an option, a techne.toml) and lists the known names."""
    known = known_strategies()
    if name not in known:
        raise StrategyError(
            f"{where}: unknown strategy {name!r}; known strategies: {', '.join(known)}"
        )
    return name


def check_strategies(names: Iterable[str], where: str = "--strategies") -> list[str]:
    """Each of a comma-separated list's names, checked; an empty list is an error too."""
    chosen = [n.strip() for n in names if n.strip()]
    if not chosen:
        raise StrategyError(
            f"{where}: no strategy given; known strategies: {', '.join(known_strategies())}"
        )
    for name in chosen:
        check_strategy(name, where)
    return list(dict.fromkeys(chosen))
