"""The base of every failure a user is told about in words."""

from babel.support import LazyProxy

from bot.core.i18n import __


class UserFacingError(Exception):
    """A failure with a message that is safe to show: no upstream text, no JSON, no key, no traceback."""

    user_message: str | LazyProxy = __("Sorry, something went wrong. Please try again.")


class Refusal(UserFacingError):
    """Input the bot will not take, with the reason in words; said before anything is charged or called."""

    def __init__(self, user_message: str | LazyProxy) -> None:
        super().__init__(user_message)
        self.user_message = user_message
