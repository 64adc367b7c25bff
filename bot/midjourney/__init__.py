"""Midjourney jobs: starting them, tracking them (no aiogram), and showing them in Telegram (the view)."""
