-- Several instances on one PostgreSQL. Unused on SQLite, which is one
-- instance's file.

-- Which instance stored each event (NULL before 0006, or on SQLite), so an
-- instance tailing the shared log tells its own events from the others'.
ALTER TABLE events ADD COLUMN origin TEXT;

-- The instances on this database, each alive while its heartbeat is recent.
-- Times are milliseconds since the epoch on the database's clock, never an
-- instance's, so skewed hosts agree on who expired.
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    -- What it watches: every instance of a cluster must watch one estate.
    estate TEXT NOT NULL,
    started_ms BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL
);

-- Who runs each incident and timeline run. Created in the transaction that
-- stores the subject's first event, renewed by its owner, fenced on every
-- append about it (owner and epoch must match), released with its final
-- event, and taken over (epoch + 1) by another instance once expired.
CREATE TABLE leases (
    subject TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    released BOOLEAN NOT NULL
);
CREATE INDEX leases_expiring ON leases (released, expires_ms);

-- Each approval's one decision, whichever instance took it: the first
-- insert wins, a second is told who decided.
CREATE TABLE approval_decisions (
    approval_id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);

-- Results runbook systems post back (`POST /api/actions/{id}/result`),
-- whichever instance they reach: the instance whose step waits registers
-- it (`owner`), the one that receives the result fills `body` once, and
-- the owner takes it.
CREATE TABLE action_results (
    action_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    body TEXT
);
