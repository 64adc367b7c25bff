-- PostgreSQL's form of sqlite/0005_models.sql (kept in step by tests/unit/test_storage_dialects.py).
-- Model lists an admin set with /setmodel (they replace the settings' lists until changed again), and the chat
-- model each person picked with /model.

CREATE TABLE model_lists (
    kind       TEXT    PRIMARY KEY,            -- chat, vision, audio, transcribe, image, tts, search, embedding
    models     TEXT    NOT NULL,               -- comma-separated, in order of preference
    changed_by BIGINT NOT NULL,
    changed_at TEXT    NOT NULL DEFAULT (to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
);

ALTER TABLE user_settings ADD COLUMN chat_model TEXT;  -- NULL: the chat kind's model in use
