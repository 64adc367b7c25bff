"""The outside world, typed in and typed out, with no aiogram: the one HTTP client, the gateway, Midjourney."""
