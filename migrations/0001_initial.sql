-- 0001: the tables recgate keeps between restarts.
-- Times are milliseconds since the Unix epoch (UTC) unless named *_iso.

-- Last-updated timestamps per (account, marketplace), from
-- GetLastUpdatedTimeForRecommendations; body is a JSON object category -> ISO|null.
CREATE TABLE mws_snapshot (
  account      TEXT NOT NULL,
  marketplace  TEXT NOT NULL,
  checked_at   INTEGER NOT NULL,
  body         TEXT NOT NULL,
  PRIMARY KEY (account, marketplace)
);

-- Merged recommendations per (account, marketplace, category, normalized filters),
-- stored under the category's lastUpdated timestamp (NULL: TTL applies).
CREATE TABLE mws_recommendations (
  account       TEXT NOT NULL,
  marketplace   TEXT NOT NULL,
  category      TEXT NOT NULL,
  filters       TEXT NOT NULL,
  last_updated  TEXT,
  fetched_at    INTEGER NOT NULL,
  body          TEXT NOT NULL,
  PRIMARY KEY (account, marketplace, category, filters)
);

-- Ads product recommendations answers (requests without a cursor only).
CREATE TABLE ads_answers (
  account       TEXT NOT NULL,
  request_key   TEXT NOT NULL,
  fetched_at    INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,
  content_type  TEXT NOT NULL,
  body          TEXT NOT NULL,
  PRIMARY KEY (account, request_key)
);
CREATE INDEX ads_answers_expires ON ads_answers (expires_at);

-- Login-with-Amazon access tokens per Ads account.
CREATE TABLE lwa_tokens (
  account       TEXT PRIMARY KEY,
  access_token  TEXT NOT NULL,
  expires_at    INTEGER NOT NULL
);

-- Token bucket levels per (account, operation): tokens at updated_at.
CREATE TABLE bucket_levels (
  account     TEXT NOT NULL,
  operation   TEXT NOT NULL,
  tokens      REAL NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (account, operation)
);
