"""The base of every failure a user is told about in words."""


class UserFacingError(Exception):
    """A failure with a message that is safe to show: no upstream text, no JSON, no key, no traceback."""

    user_message = "Sorry, something went wrong. Please try again."
