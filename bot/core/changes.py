"""How a service that keeps something in memory tells the other replicas that it changed (the database's notify:
a topic and a payload), and the stand-in for one process, which has nobody to tell."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

Changed = Callable[[str, str], Awaitable[None]]


async def nobody_else(_topic: str, _payload: str) -> None:
    """One process: nobody else to tell."""
