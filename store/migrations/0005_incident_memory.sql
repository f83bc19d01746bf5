-- The incident memory: each finished incident whose fixes ran, as its
-- telemetry signature and those fixes with their outcomes (the JSON body is
-- the engine's MemoryEntry). Projected from `memory_recorded` (which names
-- the entries its arrival evicted) and `memory_cleared`. Replaces the
-- placeholder of 0001, which nothing ever wrote.
DROP TABLE incident_memory;
CREATE TABLE incident_memory (
    incident_id TEXT PRIMARY KEY,
    recorded_seq BIGINT NOT NULL,
    -- What healed it, as in `memory_leak on user-service`; NULL when no fix did.
    healed_by TEXT,
    body TEXT NOT NULL
);
CREATE INDEX incident_memory_newest ON incident_memory (recorded_seq);
