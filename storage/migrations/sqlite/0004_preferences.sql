-- Personal settings, and the language a Midjourney task reports back in.

CREATE TABLE user_settings (
    user_id     INTEGER PRIMARY KEY,
    language    TEXT,                          -- en, zh; NULL: follow Telegram's language
    voice       TEXT,                          -- NULL: the VOICE setting
    voice_reply TEXT NOT NULL DEFAULT 'voice' CHECK (voice_reply IN ('voice', 'text', 'both')),
    text_reply  TEXT NOT NULL DEFAULT 'text'  CHECK (text_reply IN ('text', 'voice'))
);

ALTER TABLE mj_tasks ADD COLUMN locale TEXT NOT NULL DEFAULT 'en';
