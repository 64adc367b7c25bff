-- Admin changes are audited; a banned user is told once.

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    admin_id    INTEGER NOT NULL,
    action      TEXT    NOT NULL,             -- setquota, ban, unban
    target_user INTEGER NOT NULL,
    details     TEXT    NOT NULL DEFAULT '',
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

ALTER TABLE users ADD COLUMN ban_notified INTEGER NOT NULL DEFAULT 0;
CREATE INDEX users_by_last_seen ON users (last_seen);
CREATE INDEX usage_by_day ON usage (day);
