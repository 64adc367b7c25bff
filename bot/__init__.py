"""A voice-first AI assistant for Telegram, backed by the wenwen-ai gateway."""
