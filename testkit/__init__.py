"""Test tooling shared by tests/ and bench/: doubles of the Bot API and the gateway, real media, the bot
as a subprocess."""
