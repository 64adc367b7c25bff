"""Web searches: the search model with the gateway's built-in web_search tool, answering with its sources."""

from __future__ import annotations

from bot.clients.gateway import Gateway
from bot.clients.gateway_results import SearchAnswer
from bot.core.errors import Refusal
from bot.core.i18n import _

# A query is a question, not a document: longer ones are refused before anything is charged.
MAX_QUERY_LENGTH = 1000


class Search:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def check_query(self, query: str) -> None:
        if len(query) > MAX_QUERY_LENGTH:
            raise Refusal(
                _("That search is {length} characters long; I search for at most {limit}.").format(
                    length=len(query), limit=MAX_QUERY_LENGTH
                )
            )

    async def search(self, query: str) -> SearchAnswer:
        self.check_query(query)
        return await self._gateway.search(query)
