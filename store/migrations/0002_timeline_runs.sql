-- Timeline runs, projected from their `timeline_progress` events: the
-- newest copy of each run (its schedule, outcomes and score) as JSON, with
-- what listing and comparing runs filters on.
CREATE TABLE timeline_runs (
    run_id TEXT PRIMARY KEY,
    timeline_id TEXT NOT NULL,
    started_seq BIGINT NOT NULL,
    state TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX timeline_runs_by_timeline ON timeline_runs (timeline_id, started_seq);
CREATE INDEX timeline_runs_by_state ON timeline_runs (state);
