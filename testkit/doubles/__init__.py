"""Local test doubles of the Telegram Bot API and of the AI gateway, served on 127.0.0.1."""
