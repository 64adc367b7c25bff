"""Settings: the only place that reads the environment (and `.env`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

QUOTA_KINDS = ("chat", "voice", "vision", "edit", "draw", "imagine", "search")
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
# The kinds of model the bot uses, each with its own preference list (CHAT_MODEL, VISION_MODEL, …).
MODEL_KINDS = ("chat", "vision", "audio", "transcribe", "image", "tts", "search", "embedding")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}")


def split_models(text: str) -> list[str]:
    """`a, b,,a` -> [a, b]: a preference list, in order, each model once."""
    return list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        case_sensitive=True,
        extra="ignore",
    )

    # --- the contract's settings ---
    BOT_TOKEN: SecretStr
    API_KEY: SecretStr
    API_BASE_URL: str = "https://api.wenwen-ai.com/v1"
    MJ_BASE_URL: str = ""
    TELEGRAM_API_URL: str = "https://api.telegram.org"
    ADMIN_IDS: Annotated[frozenset[int], NoDecode] = frozenset()
    DATABASE_PATH: Path = Path("data/bot.sqlite3")
    # postgresql://user:password@host:port/db: PostgreSQL instead of SQLite, shared by any number of replicas.
    DATABASE_URL: SecretStr = SecretStr("")

    # Every model setting is a preference list, comma-separated: the first the gateway's catalog lists is used,
    # the next ones take over when it stops being served. The seed's names come first, then their successors.
    CHAT_MODEL: str = "gpt-4o-mini,gpt-5-mini"
    VISION_MODEL: str = "gpt-4o,gpt-5"
    AUDIO_MODEL: str = "gpt-4o-audio-preview,gpt-audio"
    TRANSCRIBE_MODEL: str = "whisper-1,gpt-4o-mini-transcribe"
    IMAGE_MODEL: str = "gpt-image-1,gpt-image-1-mini"
    TTS_MODEL: str = "gpt-4o-mini-tts,tts-1"
    SEARCH_MODEL: str = "gpt-4o-mini,gpt-5-mini"
    EMBEDDING_MODEL: str = "text-embedding-3-small"
    CHAT_MODELS: str = ""  # more chat models a user may pick with /model
    VOICE: str = "alloy"

    QUOTA_CHAT: int = Field(50, ge=-1)
    QUOTA_VOICE: int = Field(20, ge=-1)
    QUOTA_VISION: int = Field(20, ge=-1)
    QUOTA_EDIT: int = Field(5, ge=-1)
    QUOTA_DRAW: int = Field(5, ge=-1)
    QUOTA_IMAGINE: int = Field(10, ge=-1)
    QUOTA_SEARCH: int = Field(10, ge=-1)  # web searches are billed per call

    MJ_POLL_INTERVAL: float = Field(5.0, gt=0)
    MJ_TIMEOUT: float = Field(1800.0, gt=0)

    WEBHOOK_URL: str = ""
    WEBHOOK_SECRET: SecretStr = SecretStr("")
    WEBHOOK_HOST: str = "0.0.0.0"
    WEBHOOK_PORT: int = Field(8080, ge=1, le=65535)

    LOG_LEVEL: str = "INFO"
    LOG_FORMAT: Literal["text", "json"] = "text"
    FFMPEG_PATH: str = ""

    # --- tuning beyond the contract (documented in .env.example and the README) ---
    HISTORY_TURNS: int = Field(10, ge=0, description="earlier exchanges sent as context")
    MAX_VOICE_SECONDS: int = Field(300, ge=1, description="longest recording accepted, by its real length")
    MAX_IMAGE_PIXELS: int = Field(
        40_000_000, ge=1, description="pictures with more pixels (by their header) are refused before decoding"
    )
    MAX_DOWNLOAD_MB: float = Field(
        50.0, gt=0, description="cap on a picture fetched from the gateway or Midjourney"
    )
    HISTORY_DAYS: int = Field(30, ge=1, description="days a conversation's turns are kept")
    CHAT_TIMEOUT: float = Field(
        60.0, gt=0, description="seconds a text turn or a Midjourney call may take upstream"
    )
    VOICE_TIMEOUT: float = Field(120.0, gt=0, description="seconds a voice turn may take upstream")
    IMAGE_TIMEOUT: float = Field(180.0, gt=0, description="seconds an image request may take upstream")
    GATEWAY_RETRIES: int = Field(2, ge=0, le=5, description="retries on 429/5xx/connection errors")
    # Gateway calls only wait on the network: the bound is there to stop a flood, not to share a CPU.
    MAX_PARALLEL_GATEWAY_CALLS: int = Field(256, ge=1, description="gateway calls in flight at once")
    MAX_PARALLEL_ENCODES: int = Field(0, ge=0, description="ffmpeg conversions at once; 0: one per CPU core")
    SHUTDOWN_GRACE: float = Field(10.0, ge=0, description="seconds turns in flight may finish after SIGTERM")
    STREAM_ANSWERS: bool = Field(True, description="show text answers as they are written")
    SYSTEM_PROMPT: str = (
        "You are a friendly, concise assistant in a Telegram chat. Answer in the language the user writes "
        "or speaks in."
    )

    @field_validator("ADMIN_IDS", mode="before")
    @classmethod
    def _parse_admin_ids(cls, value: object) -> object:
        """Accept `1,2`, `1 2` or a JSON list, as operators write it both ways."""
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return frozenset()
            if text.startswith("["):
                return json.loads(text)
            return [part for part in text.replace(",", " ").split() if part]
        return value

    @field_validator("LOG_LEVEL")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("API_BASE_URL", "TELEGRAM_API_URL", "MJ_BASE_URL", "WEBHOOK_URL")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("BOT_TOKEN", "API_KEY")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("DATABASE_URL")
    @classmethod
    def _postgres_url(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value().strip()
        if url and not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql:// (or be empty for SQLite)")
        return SecretStr(url)

    @field_validator("WEBHOOK_URL")
    @classmethod
    def _https_only(cls, value: str) -> str:
        if value and not value.startswith("https://"):
            raise ValueError("must start with https:// (Telegram delivers webhooks over HTTPS only)")
        return value

    @field_validator(*(f"{kind.upper()}_MODEL" for kind in MODEL_KINDS), "CHAT_MODELS")
    @classmethod
    def _model_list(cls, value: str, info: ValidationInfo) -> str:
        models = split_models(value)
        if not models and info.field_name != "CHAT_MODELS":
            raise ValueError("must name at least one model")
        for model in models:
            if not _MODEL_NAME.fullmatch(model):
                raise ValueError(f"{model[:40]!r} is not a model name")
        return ",".join(models)

    @field_validator("WEBHOOK_SECRET")
    @classmethod
    def _telegram_secret(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        # Telegram's setWebhook takes 1-256 characters of A-Z, a-z, 0-9, _ and -; anything else it refuses.
        secret = value.get_secret_value()
        if secret and not _WEBHOOK_SECRET.fullmatch(secret):
            raise ValueError("must be 1 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        database_url = info.data.get("DATABASE_URL")
        if not secret and info.data.get("WEBHOOK_URL") and database_url and database_url.get_secret_value():
            # A random secret per process: each replica would register its own, and refuse the others' updates.
            raise ValueError("must be set when replicas share DATABASE_URL (each must check the same secret)")
        return value

    @model_validator(mode="after")
    def _derive_mj_base(self) -> Settings:
        if not self.MJ_BASE_URL:
            base = self.API_BASE_URL
            self.MJ_BASE_URL = base[: -len("/v1")] if base.endswith("/v1") else base
        return self

    @property
    def max_download_bytes(self) -> int:
        return int(self.MAX_DOWNLOAD_MB * 1024 * 1024)

    def model_list(self, kind: str) -> list[str]:
        """A kind's preference list as configured (an admin's /setmodel may replace it at run time)."""
        return split_models(getattr(self, f"{kind.upper()}_MODEL"))

    def quota_default(self, kind: str) -> int:
        """The daily limit every user has for `kind` unless an admin changed theirs."""
        return int(getattr(self, f"QUOTA_{kind.upper()}"))


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it in one readable line."""


def load_settings() -> Settings:
    try:
        return Settings()  # type: ignore[call-arg]  # values come from the environment
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = ".".join(str(part) for part in item["loc"]) or "settings"
            reason = "is required" if item["type"] == "missing" else item["msg"].removeprefix("Value error, ")
            problems.append(f"{name} {reason}")
        raise ConfigError("configuration error: " + "; ".join(problems)) from None
