-- PostgreSQL's form of sqlite/0008_replicas.sql (kept in step by tests/unit/test_storage_dialects.py).
-- What replicas sharing one PostgreSQL database hold in common beyond the tables above: every request in
-- flight (for /cancel and the one-heavy-request rule), the parts of albums, which replica tracks which
-- Midjourney task until when, and whose uses in flight (reservations) live while their replica does. One
-- SQLite process keeps these in memory instead and leaves them empty.
CREATE TABLE requests_in_flight (
    token      TEXT    PRIMARY KEY,
    actor_id   BIGINT NOT NULL,
    what       TEXT    NOT NULL,
    exclusive  BIGINT NOT NULL,
    replica    TEXT    NOT NULL,
    expires_at DOUBLE PRECISION    NOT NULL            -- unix seconds; its replica keeps pushing it on while it lives
);
CREATE INDEX requests_in_flight_by_actor ON requests_in_flight (actor_id);

CREATE TABLE album_parts (
    chat_id        BIGINT NOT NULL,
    media_group_id TEXT    NOT NULL,
    message_id     BIGINT NOT NULL,
    message        TEXT    NOT NULL,       -- the Message as Telegram sent it (JSON)
    received_at    DOUBLE PRECISION    NOT NULL,
    PRIMARY KEY (chat_id, media_group_id, message_id)
);

CREATE TABLE album_claims (
    chat_id        BIGINT NOT NULL,
    media_group_id TEXT    NOT NULL,
    claimed_by     TEXT    NOT NULL,
    claimed_at     DOUBLE PRECISION    NOT NULL,
    PRIMARY KEY (chat_id, media_group_id)
);

ALTER TABLE mj_tasks ADD COLUMN leased_by TEXT;
ALTER TABLE mj_tasks ADD COLUMN lease_until DOUBLE PRECISION NOT NULL DEFAULT 0;

-- A reservation made by a replica lives while the replica pushes its expiry on; NULL: until it is settled.
ALTER TABLE reservations ADD COLUMN holder TEXT;
ALTER TABLE reservations ADD COLUMN expires_at DOUBLE PRECISION;
