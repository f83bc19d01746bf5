-- The governance audit log, projected from `policy_decision`,
-- `approval_requested` and `approval_decided` events: who or what decided
-- about each plan, when, why, and on what evidence (JSON).
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    approval_id TEXT,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT NOT NULL,
    plan TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE INDEX audit_log_by_incident ON audit_log (incident_id, seq);
CREATE INDEX audit_log_by_approval ON audit_log (approval_id, seq);
