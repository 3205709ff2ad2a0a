-- 0003: whether the last run stopped cleanly (bucket levels saved at
-- shutdown), and indexes for removing the oldest answers first.
-- clean_shutdown is set to 0 at every start and to 1 after the levels are
-- saved at shutdown: 0 found at start means the previous process died
-- (kill -9, crash) and may have spent tokens it never wrote, so every
-- quota bucket starts empty. A fresh database has spent nothing: 1.
CREATE TABLE run_state (
  id              INTEGER PRIMARY KEY CHECK (id = 1),
  clean_shutdown  INTEGER NOT NULL
);
INSERT INTO run_state (id, clean_shutdown) VALUES (1, 1);

CREATE INDEX mws_recommendations_fetched ON mws_recommendations (fetched_at);
CREATE INDEX ads_answers_fetched ON ads_answers (fetched_at);
