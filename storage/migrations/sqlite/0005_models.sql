-- Model lists an admin set with /setmodel (they replace the settings' lists until changed again), and the chat
-- model each person picked with /model.

CREATE TABLE model_lists (
    kind       TEXT    PRIMARY KEY,            -- chat, vision, audio, transcribe, image, tts, search, embedding
    models     TEXT    NOT NULL,               -- comma-separated, in order of preference
    changed_by INTEGER NOT NULL,
    changed_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

ALTER TABLE user_settings ADD COLUMN chat_model TEXT;  -- NULL: the chat kind's model in use
