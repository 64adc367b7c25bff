"""How a gateway call can fail, each with the sentence its user is told (shown in their language)."""

from __future__ import annotations

import openai

from bot.core.errors import UserFacingError
from bot.core.i18n import __


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


class GatewayAnswerTooLarge(GatewayError):
    user_message = __("Sorry, the AI service sent back a file larger than I accept. Nothing was charged.")


def status_error(operation: str, error: openai.APIStatusError) -> GatewayError:
    """The failure an HTTP error status means, by the operation that got it."""
    status = error.status_code
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
