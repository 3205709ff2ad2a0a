-- 0002: when each stored LWA access token was obtained (ms since the Unix
-- epoch), so the refresh margin can be scaled to the token's lifetime after a
-- restart. 0: unknown (rows written before this migration).
ALTER TABLE lwa_tokens ADD COLUMN obtained_at INTEGER NOT NULL DEFAULT 0;
