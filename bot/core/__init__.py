"""The vocabulary every layer shares, with no aiogram: who acts, user-facing errors, translations, logs."""
