"""Where the reference API specs live: ../shared/specs beside the project, or $API_SPECS_DIR."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def specs_dir() -> Path:
    """The folder holding openai-openapi.json, telegram-bot-api.json and midjourney.md."""
    override = os.environ.get("API_SPECS_DIR")
    if override:
        return Path(override)
    return PROJECT_ROOT.parent / "shared" / "specs"


def spec_file(name: str) -> Path | None:
    """The spec file's path, or None when it is not there (validation is then skipped, visibly)."""
    path = specs_dir() / name
    return path if path.is_file() else None
