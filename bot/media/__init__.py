"""Audio and pictures: voice encoding, recording lengths, picture checks and scaling; no aiogram."""
