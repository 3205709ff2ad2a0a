-- 0003: restore rates learnt for upstreams whose limits are unpublished
-- (throttle.adaptive), per (account, bucket group), so a restart does not
-- trip the upstream again to relearn them. Times in ms since the epoch.
CREATE TABLE bucket_rates (
  account           TEXT NOT NULL,
  operation         TEXT NOT NULL,
  restore_per_s     REAL NOT NULL,
  last_throttle_at  INTEGER,
  PRIMARY KEY (account, operation)
);
