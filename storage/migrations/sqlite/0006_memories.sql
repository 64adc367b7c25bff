-- Facts each person asked the bot to remember, with their embeddings (float32, little-endian) for recall.

CREATE TABLE memories (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    owner      INTEGER NOT NULL,               -- the actor: a user, or a chat for messages sent on its behalf
    fact       TEXT    NOT NULL,
    vector     BLOB    NOT NULL,
    model      TEXT    NOT NULL,               -- the embedding model that made the vector
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX memories_by_owner ON memories (owner, id);
