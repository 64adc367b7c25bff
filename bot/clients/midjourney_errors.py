"""How a Midjourney call can fail, each with the sentence its user is told (shown in their language)."""

from __future__ import annotations

from babel.support import LazyProxy

from bot.core.errors import UserFacingError
from bot.core.i18n import __


class MidjourneyError(UserFacingError):
    user_message = __("Sorry, Midjourney could not take this request. Please try again later.")


class MidjourneyRejected(MidjourneyError):
    """The request itself was refused (a banned word, an invalid prompt): trying again will not help."""

    def __init__(self, user_message: str | LazyProxy) -> None:
        super().__init__(str(user_message))
        self.user_message = user_message


class MidjourneyBusy(MidjourneyError):
    user_message = __("Midjourney is busy right now (its queue is full). Please try again in a few minutes.")


class MidjourneyUnavailable(MidjourneyError):
    user_message = __("Sorry, Midjourney is unavailable right now. Please try again later.")


class MidjourneyBadAnswer(MidjourneyError):
    user_message = __("Sorry, Midjourney sent back something I could not use. Please try again.")


class MidjourneyTooLarge(MidjourneyError):
    user_message = __("Midjourney's picture is larger than I accept, so I could not deliver it.")
