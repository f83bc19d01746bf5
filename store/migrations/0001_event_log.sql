-- The event log and its projections. Every row outside `events` is derived
-- from events, in the same transaction that stores them.

-- One row: the log's identity and the newest seq. Appends bump `last_seq`
-- inside their transaction, which serializes writers and keeps seq gap-free
-- (an identity column would leave gaps on rollback).
CREATE TABLE log_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch TEXT NOT NULL,
    last_seq BIGINT NOT NULL
);

CREATE TABLE events (
    seq BIGINT PRIMARY KEY,
    ts TEXT NOT NULL,
    kind TEXT NOT NULL,
    incident_id TEXT,
    body TEXT NOT NULL
);
CREATE INDEX events_by_incident ON events (incident_id, seq);

CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    created_seq BIGINT NOT NULL,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    affected_services TEXT NOT NULL,
    scenario_id TEXT,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    resolution_time DOUBLE PRECISION,
    cost_savings DOUBLE PRECISION,
    root_cause TEXT,
    report TEXT,
    time_to_detect DOUBLE PRECISION,
    time_to_diagnose DOUBLE PRECISION
);
CREATE INDEX incidents_newest ON incidents (created_seq);
CREATE INDEX incidents_by_status ON incidents (status, created_seq);

CREATE TABLE consensus_votes (
    seq BIGINT NOT NULL,
    incident_id TEXT NOT NULL,
    plan TEXT NOT NULL,
    passed BOOLEAN NOT NULL,
    agent TEXT NOT NULL,
    choice TEXT NOT NULL,
    reason TEXT NOT NULL,
    injected_fault TEXT,
    PRIMARY KEY (seq, agent)
);
CREATE INDEX consensus_votes_by_incident ON consensus_votes (incident_id, seq);

-- Resolution's finished actions: safety checks, steps, verification, rollback.
CREATE TABLE healing_actions (
    seq BIGINT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    action_id TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    duration_ms BIGINT,
    details TEXT NOT NULL
);
CREATE INDEX healing_actions_by_incident ON healing_actions (incident_id, seq);

-- Communication's finished actions: the status page and the webhook.
CREATE TABLE notifications (
    seq BIGINT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    details TEXT NOT NULL
);

CREATE TABLE config_history (
    seq BIGINT PRIMARY KEY,
    incident_id TEXT,
    service TEXT NOT NULL,
    setting TEXT NOT NULL,
    from_value TEXT NOT NULL,
    to_value TEXT NOT NULL,
    cause TEXT NOT NULL
);

-- Resolved incidents as signatures, for the learning issue.
CREATE TABLE incident_memory (
    incident_id TEXT PRIMARY KEY,
    recorded_seq BIGINT NOT NULL,
    features TEXT NOT NULL,
    root_cause TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL
);
