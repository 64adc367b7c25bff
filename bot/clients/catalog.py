"""The gateway's model catalog: `GET /models`, read into model ids and the dates they shut down (when the
gateway says)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import httpx

from bot.config import Settings

log = logging.getLogger(__name__)

_TIMEOUT = 10.0

Catalog = dict[str, dt.date | None]  # model id -> the day it shuts down, if announced


class CatalogUnavailable(Exception):
    """The catalog could not be read (the gateway down, or an answer that is no model list)."""


async def read_catalog(http: httpx.AsyncClient, settings: Settings) -> Catalog:
    headers = {"Authorization": f"Bearer {settings.API_KEY.get_secret_value()}"}
    try:
        async with asyncio.timeout(_TIMEOUT):
            response = await http.get(settings.API_BASE_URL + "/models", headers=headers)
        if response.status_code in (401, 403):
            raise CatalogUnavailable(f"API_KEY rejected (HTTP {response.status_code})")
        response.raise_for_status()
        answer = response.json()
    except httpx.HTTPStatusError as error:
        raise CatalogUnavailable(f"HTTP {error.response.status_code}") from None
    except (httpx.HTTPError, TimeoutError, ValueError) as error:
        raise CatalogUnavailable(type(error).__name__) from None
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list):
        raise CatalogUnavailable("no model list")
    catalog: Catalog = {}
    for item in data:
        if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]:
            catalog[item["id"]] = shutdown_day(item.get("shutdown_date"))
    return catalog


def shutdown_day(value: Any) -> dt.date | None:
    """A shutdown date as the gateway gives it: an ISO date (or date-time), or a unix time; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and value > 0:
        try:
            return dt.datetime.fromtimestamp(value, dt.UTC).date()
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            return None
    return None
