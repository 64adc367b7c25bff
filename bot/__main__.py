"""`python -m bot`: load the settings, then run the bot until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import sys

from bot.config import ConfigError, load_settings


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    # Imported after the settings check: aiogram takes seconds to import, a typo should not.
    from bot.app import run

    try:
        asyncio.run(run(settings))
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass  # stopped during start-up
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
