-- A Midjourney prompt rewritten into English keeps the words it was asked in, for its status message.

ALTER TABLE mj_tasks ADD COLUMN original_prompt TEXT NOT NULL DEFAULT '';
