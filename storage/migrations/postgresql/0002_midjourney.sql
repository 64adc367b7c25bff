-- PostgreSQL's form of sqlite/0002_midjourney.sql (kept in step by tests/unit/test_storage_dialects.py).
-- Midjourney tasks being tracked, and the buttons under delivered pictures.

CREATE TABLE mj_tasks (
    task_id            TEXT    PRIMARY KEY,
    chat_id            BIGINT NOT NULL,
    thread_id          BIGINT NOT NULL DEFAULT 0,
    request_message_id BIGINT,               -- the user's message (or the picture whose button was pressed)
    status_message_id  BIGINT,               -- the message edited with progress
    requested_by       BIGINT NOT NULL,      -- who asked (or pressed)
    charged_user       BIGINT NOT NULL,      -- whose imagine quota paid
    charge_day         TEXT    NOT NULL,      -- the UTC day the use was counted on, for a refund
    kind               TEXT    NOT NULL,      -- imagine, blend, action
    prompt             TEXT    NOT NULL DEFAULT '',
    pressed_button     TEXT,                  -- mj_buttons.key that started this task, freed when it ends
    -- pending: polling; delivering: claimed by the one delivering it; done, failed: final
    state              TEXT    NOT NULL DEFAULT 'pending'
                               CHECK (state IN ('pending', 'delivering', 'done', 'failed')),
    shown_status       TEXT    NOT NULL DEFAULT '',
    shown_progress     BIGINT NOT NULL DEFAULT -1,
    shown_image        BIGINT NOT NULL DEFAULT 0,  -- whether the status message is a photo (a preview)
    result_message_id  BIGINT,
    created_at         DOUBLE PRECISION    NOT NULL,      -- unix seconds
    finished_at        DOUBLE PRECISION
);
CREATE INDEX mj_tasks_by_state ON mj_tasks (state);
CREATE INDEX mj_tasks_by_result ON mj_tasks (chat_id, result_message_id);

CREATE TABLE mj_buttons (
    key        TEXT    PRIMARY KEY,           -- what callback_data carries (customIds are longer than 64 bytes)
    task_id    TEXT    NOT NULL,
    custom_id  TEXT    NOT NULL,
    label      TEXT    NOT NULL,
    busy       BIGINT NOT NULL DEFAULT 0     -- 1 while the task it started is running
);
CREATE INDEX mj_buttons_by_task ON mj_buttons (task_id);
