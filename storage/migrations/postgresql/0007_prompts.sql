-- PostgreSQL's form of sqlite/0007_prompts.sql (kept in step by tests/unit/test_storage_dialects.py).
-- A Midjourney prompt rewritten into English keeps the words it was asked in, for its status message.

ALTER TABLE mj_tasks ADD COLUMN original_prompt TEXT NOT NULL DEFAULT '';
