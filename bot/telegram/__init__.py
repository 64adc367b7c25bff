"""The aiogram edge: middlewares, identity, languages, retries, edits, text limits, menus, replies, webhook."""
