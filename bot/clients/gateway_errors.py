"""How a gateway call can fail, each with the sentence its user is told (shown in their language), and the one
place that turns the SDK's and the transport's failures into them, logging each once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

import httpx

from bot.clients.http import ResponseTooLarge
from bot.core.errors import UserFacingError
from bot.core.i18n import __

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)


class GatewayError(UserFacingError):
    """A gateway call failed."""

    user_message = __("Sorry, the AI service failed to answer. Please try again in a moment.")


class GatewayTimeout(GatewayError):
    user_message = __("Sorry, the AI service took too long to answer. Please try again.")


class GatewayBusy(GatewayError):
    user_message = __("Sorry, the AI service is busy right now. Please try again in a minute.")


class GatewayUnavailable(GatewayError):
    user_message = __("Sorry, the AI service is unavailable right now. Please try again later.")


class GatewayRefused(GatewayError):
    user_message = __("Sorry, the AI service declined this request under its content rules. Try rephrasing it.")


class UnreadableRecording(GatewayError):
    user_message = __("I could not make sense of that recording: it may be damaged, or in a format I can't read.")


class GatewayBadAnswer(GatewayError):
    user_message = __("Sorry, the AI service sent back an answer I could not use. Please try again.")


class ModelNotServed(GatewayError):
    """The gateway cannot route the model (new-api: 503 or 404, code model_not_found, "no channel")."""

    user_message = __("Sorry, the AI model for this is not available right now. Please try again later.")


class GatewayAnswerTooLarge(GatewayError):
    user_message = __("Sorry, the AI service sent back a file larger than I accept. Nothing was charged.")


def status_error(operation: str, error: openai.APIStatusError) -> GatewayError:
    """The failure an HTTP error status means, by the operation that got it."""
    status = error.status_code
    if status in (404, 503) and is_model_not_served(error):
        return ModelNotServed(f"status {status}")
    if operation == "transcribe" and status in (400, 415, 422):
        return UnreadableRecording("transcription refused the file")
    if status == 429:
        return GatewayBusy("rate limited")
    if status in (400, 403, 422) and is_policy_refusal(error):
        return GatewayRefused("content policy")
    if status >= 500:
        return GatewayUnavailable(f"status {status}")
    return GatewayError(f"status {status}")


def is_policy_refusal(error: openai.APIStatusError) -> bool:
    said = f"{error.code or ''} {error.type or ''} {error.message or ''}".lower()
    return any(word in said for word in ("content_policy", "moderation", "safety", "content_filter"))


def is_model_not_served(error: openai.APIStatusError) -> bool:
    """new-api's answer for a model it cannot route: code model_not_found, or a message saying no channel is
    available for the model (in Chinese or English, as its versions word it)."""
    message = (error.message or "").lower()
    return (
        error.code == "model_not_found"
        or "无可用渠道" in message
        or "no available channel" in message
        or ("model" in message and "does not exist" in message)
    )


def _sdk() -> ModuleType:
    """The openai SDK, for its error classes. Not imported with this module: it is half a second of the start-up,
    and paid in the background once the bot serves (GatewayBase.prepare). A block under `translated` makes SDK
    calls, so by the time one fails the SDK is in; importing it here again costs a dictionary lookup."""
    import openai

    return openai


@dataclass(slots=True)
class Attempt:
    """What a call has learned so far, for its log line."""

    request_id: str = "-"


@contextlib.asynccontextmanager
async def translated(operation: str, deadline: float | None, request_id: str = "-") -> AsyncIterator[Attempt]:
    """The block under a deadline (None: the block keeps its own), its failures turned into GatewayErrors.

    Each failure is logged once here, with the status and the gateway's request id only: upstream bodies can
    echo prompts or keys and never go to the log or the user.
    """
    attempt = Attempt(request_id)
    try:
        async with asyncio.timeout(deadline):
            yield attempt
    except GatewayError as error:
        log.warning("gateway %s failed: %s request_id=%s", operation, error, attempt.request_id)
        raise
    except (TimeoutError, _sdk().APITimeoutError):
        log.warning("gateway %s timed out", operation)
        raise GatewayTimeout(operation) from None
    except _sdk().APIStatusError as error:
        log.warning(
            "gateway %s failed: status=%s request_id=%s", operation, error.status_code, error.request_id or "-"
        )
        raise status_error(operation, error) from None
    except (_sdk().APIConnectionError, httpx.TransportError) as error:
        if isinstance(error, ResponseTooLarge) or isinstance(error.__cause__, ResponseTooLarge):
            log.warning("gateway %s failed: the answer was larger than the process reads", operation)
            raise GatewayAnswerTooLarge(operation) from None
        log.warning("gateway %s failed: cannot connect", operation)
        raise GatewayUnavailable(operation) from None
    except (_sdk().OpenAIError, httpx.HTTPError, ValueError, TypeError, AttributeError, KeyError) as error:
        # Malformed JSON, or a shape the SDK could not read.
        log.warning(
            "gateway %s failed: unreadable answer (%s) request_id=%s",
            operation,
            type(error).__name__,
            attempt.request_id,
        )
        raise GatewayBadAnswer(operation) from None
