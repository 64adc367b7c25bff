"""Settings from the environment and .env, with one readable line for a bad or missing value."""

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings

ALL_CONTRACT_SETTINGS = {
    "BOT_TOKEN", "API_KEY", "API_BASE_URL", "MJ_BASE_URL", "TELEGRAM_API_URL", "ADMIN_IDS", "DATABASE_PATH",
    "CHAT_MODEL", "VISION_MODEL", "AUDIO_MODEL", "TRANSCRIBE_MODEL", "IMAGE_MODEL", "VOICE",
    "TTS_MODEL", "SEARCH_MODEL", "EMBEDDING_MODEL", "CHAT_MODELS", "QUOTA_SEARCH",
    "MAX_IMAGE_PIXELS", "MAX_DOWNLOAD_MB", "MAX_VOICE_SECONDS",
    "QUOTA_CHAT", "QUOTA_VOICE", "QUOTA_VISION", "QUOTA_EDIT", "QUOTA_DRAW", "QUOTA_IMAGINE",
    "MJ_POLL_INTERVAL", "MJ_TIMEOUT", "WEBHOOK_URL", "WEBHOOK_SECRET", "WEBHOOK_HOST", "WEBHOOK_PORT",
    "LOG_LEVEL", "FFMPEG_PATH",
}  # fmt: skip


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout


def test_defaults_follow_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", "1:abc")
    monkeypatch.setenv("API_KEY", "sk-test")
    settings = load_settings()
    assert settings.API_BASE_URL == "https://api.wenwen-ai.com/v1"
    assert settings.MJ_BASE_URL == "https://api.wenwen-ai.com"
    assert settings.DATABASE_PATH == Path("data/bot.sqlite3")
    kinds = ("chat", "voice", "vision", "edit", "draw", "imagine", "search")
    assert [settings.quota_default(kind) for kind in kinds] == [50, 20, 20, 5, 5, 10, 10]
    assert (settings.MJ_POLL_INTERVAL, settings.MJ_TIMEOUT, settings.WEBHOOK_PORT) == (5.0, 1800.0, 8080)
    assert settings.ADMIN_IDS == frozenset()


@pytest.mark.parametrize("raw", ["1,2", " 1, 2 ", "[1, 2]", "1 2"])
def test_admin_ids_in_either_form(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("ADMIN_IDS", raw)
    assert Settings(BOT_TOKEN="1:a", API_KEY="k").ADMIN_IDS == {1, 2}


def test_dot_env_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BOT_TOKEN=1:fromfile\nAPI_KEY=k\nAPI_BASE_URL=http://127.0.0.1:9/v1/\n")
    settings = load_settings()
    assert settings.BOT_TOKEN.get_secret_value() == "1:fromfile"
    assert settings.API_BASE_URL == "http://127.0.0.1:9/v1"
    assert settings.MJ_BASE_URL == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({}, "BOT_TOKEN"),
        ({"BOT_TOKEN": "1:a"}, "API_KEY"),
        ({"BOT_TOKEN": "1:a", "API_KEY": "k", "QUOTA_VOICE": "many"}, "QUOTA_VOICE"),
        ({"BOT_TOKEN": "1:a", "API_KEY": "k", "QUOTA_DRAW": "-5"}, "QUOTA_DRAW"),
        ({"BOT_TOKEN": "1:a", "API_KEY": "k", "ADMIN_IDS": "1,x"}, "ADMIN_IDS"),
        ({"BOT_TOKEN": "1:a", "API_KEY": "k", "API_BASE_URL": "ftp://x"}, "API_BASE_URL"),
        ({"BOT_TOKEN": "1:a", "API_KEY": "k", "MJ_POLL_INTERVAL": "0"}, "MJ_POLL_INTERVAL"),
        ({"BOT_TOKEN": "1:a", "API_KEY": "k", "LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"BOT_TOKEN": "1:a", "API_KEY": "k", "DATABASE_URL": "mysql://u:pw@h/db"}, "DATABASE_URL"),
        (
            # Replicas in webhook mode must all check one secret: a random one each would refuse the others'.
            {
                "BOT_TOKEN": "1:a",
                "API_KEY": "k",
                "DATABASE_URL": "postgresql://u:pw@h/db",
                "WEBHOOK_URL": "https://x/h",
            },
            "WEBHOOK_SECRET",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], named: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    message = str(error.value)
    assert named in message
    assert "\n" not in message
    assert "Traceback" not in message and "Value error" not in message and "pw@" not in message


def test_env_example_lists_every_setting() -> None:
    example = Path(__file__).resolve().parents[2] / ".env.example"
    names = {
        line.split("=", 1)[0]
        for line in example.read_text().splitlines()
        if line and not line.startswith("#") and "=" in line
    }
    assert ALL_CONTRACT_SETTINGS <= names
    assert names == set(Settings.model_fields)


def _required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", "1:abc")
    monkeypatch.setenv("API_KEY", "sk-test")


@pytest.mark.parametrize("secret", ["sécret", "a b", "x" * 257, "semi;colon", "new\nline", "ünïcode-only"])
def test_a_webhook_secret_telegram_would_refuse_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    """WEBHOOK_SECRET must be 1-256 of A-Z a-z 0-9 _ -: anything else stops the start with one line naming it."""
    _required(monkeypatch)
    monkeypatch.setenv("WEBHOOK_SECRET", secret)
    with pytest.raises(ConfigError) as error:
        load_settings()
    message = str(error.value)
    assert "WEBHOOK_SECRET" in message
    assert "\n" not in message
    assert secret not in message  # a secret, even a bad one, is not repeated in the log


@pytest.mark.parametrize("secret", ["", "A-z_09-", "x" * 256, "k"])
def test_a_valid_webhook_secret_passes(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    """Letters, digits, _ and -, up to 256 of them, pass; empty means a random one per run."""
    _required(monkeypatch)
    monkeypatch.setenv("WEBHOOK_SECRET", secret)
    assert load_settings().WEBHOOK_SECRET.get_secret_value() == secret


def test_hostile_input_limits_have_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """MAX_IMAGE_PIXELS 40000000, MAX_DOWNLOAD_MB 50 (as bytes: 50 MiB), HISTORY_DAYS 30."""
    _required(monkeypatch)
    settings = load_settings()
    assert (settings.MAX_IMAGE_PIXELS, settings.MAX_DOWNLOAD_MB, settings.HISTORY_DAYS) == (40_000_000, 50, 30)
    assert settings.max_download_bytes == 50 * 1024 * 1024
