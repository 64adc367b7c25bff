-- Users, per-chat conversation history, the usage ledger with in-flight reservations, quota overrides.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,          -- Telegram user id
    name          TEXT    NOT NULL DEFAULT '',
    language      TEXT    NOT NULL DEFAULT '',
    banned        INTEGER NOT NULL DEFAULT 0,
    first_seen    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_seen     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- One row per message in a conversation; a conversation is a chat, or a forum topic inside one.
CREATE TABLE history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id    INTEGER NOT NULL,
    thread_id  INTEGER NOT NULL DEFAULT 0,
    role       TEXT    NOT NULL CHECK (role IN ('user', 'assistant')),
    speaker    TEXT    NOT NULL DEFAULT '',
    content    TEXT    NOT NULL,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX history_by_conversation ON history (chat_id, thread_id, id);

-- Uses that succeeded, per user, kind and UTC day.
CREATE TABLE usage (
    user_id INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    day     TEXT    NOT NULL,                  -- YYYY-MM-DD, UTC
    count   INTEGER NOT NULL DEFAULT 0,
    tokens  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, kind, day)
);

-- Uses in flight: they count against the limit until committed into `usage` or released.
CREATE TABLE reservations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    day        TEXT    NOT NULL,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX reservations_by_use ON reservations (user_id, kind, day);

-- Per-user daily limits set by an admin; -1 unlimited, 0 none.
CREATE TABLE quota_overrides (
    user_id     INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    daily_limit INTEGER NOT NULL CHECK (daily_limit >= -1),
    PRIMARY KEY (user_id, kind)
);
