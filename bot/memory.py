"""Long-term memory: facts a person asked the bot to remember, kept with their embeddings; the few closest to
what they say now are recalled into the model's instructions, and only those close enough.

The search is plain numpy over one person's facts: a few hundred vectors of 1,536 floats are one matrix
product of well under a millisecond, so an index (sqlite-vec, a vector database) would buy nothing here and cost
a native extension. numpy is imported on first use, in a worker thread.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from bot.clients.gateway import Gateway
from bot.core.errors import Refusal
from bot.core.i18n import _, __
from bot.models import Models
from storage.memories import MemoryRepository, StoredFact

# At most this many facts are recalled into one turn, and only those at least this similar (cosine) to what is
# said: text-embedding-3 puts related sentences around 0.4-0.7 and unrelated ones below 0.25.
RECALLED = 3
SIMILAR_ENOUGH = 0.35
MAX_FACTS = 500  # per person: beyond, /forget some first
MAX_FACT_LENGTH = 500

TOO_MANY = Refusal(__("I already remember 500 things for you; ask me to forget some first (see /memory)."))


@dataclass(frozen=True, slots=True)
class Recalled:
    fact: str
    similarity: float


class Memory:
    def __init__(self, repository: MemoryRepository, gateway: Gateway, models: Models) -> None:
        self._repo = repository
        self._gateway = gateway
        self._models = models
        self._numpy: ModuleType | None = None

    async def remember(self, owner: int, fact: str) -> int:
        """Store a fact with its embedding; how many facts the owner has now."""
        fact = " ".join(fact.split())[:MAX_FACT_LENGTH]
        if not fact:
            raise Refusal(__("There was nothing to remember."))
        if await self._repo.count(owner) >= MAX_FACTS:
            raise TOO_MANY
        [vector] = await self._gateway.embed([fact])
        np = await self._np()
        await self._repo.add(
            owner, fact, np.asarray(vector, dtype="<f4").tobytes(), self._models.current("embedding")
        )
        return await self._repo.count(owner)

    async def recall(self, owner: int, text: str) -> list[Recalled]:
        """The owner's facts closest to `text`, closest first: at most RECALLED, each at least SIMILAR_ENOUGH.
        Nothing is asked of the gateway when the owner has no facts."""
        facts = await self._comparable(owner)
        if not facts or not text.strip():
            return []
        [vector] = await self._gateway.embed([text])
        await self._np()
        return await asyncio.to_thread(self._closest, facts, vector, RECALLED)

    async def facts(self, owner: int) -> list[str]:
        return [stored.fact for stored in await self._repo.of(owner)]

    async def forget_number(self, owner: int, number: int) -> str:
        """Forget the owner's fact numbered as /memory lists it (from 1); the fact forgotten."""
        stored = await self._repo.of(owner)
        if not 1 <= number <= len(stored):
            raise Refusal(_("There is no fact number {number}; /memory lists them.").format(number=number))
        await self._repo.delete(owner, [stored[number - 1].id])
        return stored[number - 1].fact

    async def forget_all(self, owner: int) -> int:
        return await self._repo.delete_all(owner)

    async def forget_about(self, owner: int, description: str) -> str | None:
        """Forget the fact closest to a description (as the model words a request to forget), if one is close
        enough; the fact forgotten, or None."""
        facts = await self._comparable(owner)
        if not facts:
            return None
        [vector] = await self._gateway.embed([description])
        await self._np()
        closest = await asyncio.to_thread(self._closest, facts, vector, 1)
        if not closest:
            return None
        chosen = next(stored for stored in facts if stored.fact == closest[0].fact)
        await self._repo.delete(owner, [chosen.id])
        return chosen.fact

    async def _comparable(self, owner: int) -> list[StoredFact]:
        """The facts whose vectors the embedding model in use made (another model's are not comparable)."""
        model = self._models.current("embedding")
        return [stored for stored in await self._repo.of(owner) if stored.model == model]

    def _closest(self, facts: list[StoredFact], vector: list[float], limit: int) -> list[Recalled]:
        """Blocking: cosine similarity of each fact to the vector, the best `limit` above the threshold."""
        np: Any = self._numpy
        assert np is not None
        matrix = np.stack([np.frombuffer(stored.vector, dtype="<f4") for stored in facts])
        query = np.asarray(vector, dtype="<f4")
        if matrix.shape[1] != query.shape[0]:
            return []
        norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(query) or 1.0)
        similarity = matrix @ query / np.where(norms == 0, 1.0, norms)
        order = np.argsort(-similarity)[:limit]
        return [
            Recalled(facts[index].fact, float(similarity[index]))
            for index in order
            if similarity[index] >= SIMILAR_ENOUGH
        ]

    async def _np(self) -> ModuleType:
        if self._numpy is None:
            self._numpy = await asyncio.to_thread(importlib.import_module, "numpy")
        return self._numpy
