"""`python -m bot`: load the settings, then run the bot until SIGTERM or Ctrl-C."""

from __future__ import annotations

import gc
import sys


def main() -> int:
    # The start-up's imports build a few hundred thousand objects that all live as long as the process (aiogram's
    # and pydantic's models above all). With the cyclic collector on, so many allocations set it off hundreds of
    # times, each pass walking what was built so far and finding next to nothing to free: a fifth of the start-up.
    # It is back on, over a frozen heap, before the bot does anything.
    gc.disable()
    import asyncio

    from bot.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    # Imported after the settings check: aiogram takes seconds to import, a typo should not.
    from bot.app import run

    gc.freeze()
    gc.enable()
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
