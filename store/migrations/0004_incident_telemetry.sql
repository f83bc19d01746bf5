-- Closed incidents' chart windows: each watched metric against its
-- baseline, second by second, with the moments marked (JSON). Kept beside
-- the log, not in it: a window is too large to stream to every dashboard,
-- and it is derived from the twin, not an event.
CREATE TABLE incident_telemetry (
    incident_id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
