//! The incident memory: every finished incident as a signature (the
//! anomalous telemetry series when it was detected, with their strength),
//! the fixes that ran on it, and how each ended.
//!
//! Detection recalls the past incidents whose signatures are similar to the
//! current one's (cosine similarity of the sigma vectors over `(service,
//! metric)` series, at least [`SIMILARITY_THRESHOLD`]), and gives diagnosis
//! each root cause's track record over them. Diagnosis then ranks a fix
//! that healed similar incidents higher, skips one that only ever failed
//! on them, and takes a shorter path when the match is strong.
//!
//! Memory is bounded: beyond its capacity the oldest entry is evicted
//! (first in, first out), so the newest behaviour of the estate is what is
//! remembered. A [`Memory`] of capacity 0 remembers nothing. The store
//! keeps the same entries (`incident_memory`), so memory survives restarts.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use crate::protocol::{
    FixOutcome, FixTrackRecord, MemoryEntry, MemoryExport, Recall, RecalledIncident, SignatureFeature,
};

/// Cosine similarity from which a past incident counts as similar.
pub const SIMILARITY_THRESHOLD: f64 = 0.8;
/// Similarity from which diagnosis takes the short path: confirming a
/// known signature against the estate instead of ranking from scratch.
pub const RECOGNISED_SIMILARITY: f64 = 0.9;
/// Entries kept unless configured otherwise.
pub const DEFAULT_CAPACITY: usize = 2_000;
/// Similar incidents a recall weighs, most similar first: the closest
/// precedents, not every vaguely similar one.
const RECALL_KEEP: usize = 10;
/// Deviations are capped here, as detection caps them, so one absurd
/// reading cannot dominate a signature.
const CAP_SIGMA: f64 = 12.0;

/// A cheap-to-clone handle on the memory.
#[derive(Clone)]
pub struct Memory {
    /// The entries, oldest first, and the capacity.
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    /// The most entries kept.
    capacity: usize,
    /// Oldest first, each with its features sorted by series for merging.
    entries: VecDeque<Remembered>,
}

struct Remembered {
    /// The entry as recorded.
    entry: MemoryEntry,
    /// Its features as `(series, capped sigma)`, sorted by series, with the
    /// vector's norm.
    vector: Vector,
}

/// A signature as a sparse vector.
struct Vector {
    /// `("service/metric", sigma)`, sorted by the key.
    components: Vec<(String, f64)>,
    /// Its Euclidean norm.
    norm: f64,
}

impl Vector {
    fn of(features: &[SignatureFeature]) -> Self {
        let mut components: Vec<(String, f64)> = features
            .iter()
            .map(|f| (format!("{}/{}", f.service, f.metric), f.sigma.clamp(0.0, CAP_SIGMA)))
            .collect();
        components.sort_by(|a, b| a.0.cmp(&b.0));
        components.dedup_by(|a, b| a.0 == b.0);
        let norm = components.iter().map(|(_, v)| v * v).sum::<f64>().sqrt();
        Self { components, norm }
    }

    /// Cosine similarity, 0..=1 (sigmas are never negative); 0 when either
    /// is empty.
    fn cosine(&self, other: &Vector) -> f64 {
        if self.norm == 0.0 || other.norm == 0.0 {
            return 0.0;
        }
        let (mut i, mut j, mut dot) = (0, 0, 0.0);
        while i < self.components.len() && j < other.components.len() {
            let (a, b) = (&self.components[i], &other.components[j]);
            match a.0.cmp(&b.0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    dot += a.1 * b.1;
                    i += 1;
                    j += 1;
                }
            }
        }
        (dot / (self.norm * other.norm)).clamp(0.0, 1.0)
    }
}

/// Whether `recall` is a strong match with a fix that healed before: the
/// case for diagnosis's short path.
pub fn recognised(recall: &Recall) -> bool {
    recall.best_similarity() >= RECOGNISED_SIMILARITY && recall.fixes.first().is_some_and(|f| f.healed > 0)
}

/// Cosine similarity of two signatures, 0..=1.
pub fn similarity(a: &[SignatureFeature], b: &[SignatureFeature]) -> f64 {
    Vector::of(a).cosine(&Vector::of(b))
}

impl Memory {
    /// An empty memory keeping at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                capacity,
                entries: VecDeque::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("memory lock poisoned")
    }

    /// The most entries kept.
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Remembers `entry`, evicting the oldest beyond capacity. Returns the
    /// incidents evicted, or `None` when the entry was not kept (capacity
    /// 0, or no features: a signature of nothing matches nothing).
    pub fn record(&self, entry: MemoryEntry) -> Option<Vec<uuid::Uuid>> {
        let mut inner = self.lock();
        if inner.capacity == 0 || entry.features.is_empty() {
            return None;
        }
        let vector = Vector::of(&entry.features);
        inner.entries.retain(|r| r.entry.incident_id != entry.incident_id);
        inner.entries.push_back(Remembered { entry, vector });
        let mut evicted = Vec::new();
        while inner.entries.len() > inner.capacity {
            if let Some(oldest) = inner.entries.pop_front() {
                evicted.push(oldest.entry.incident_id);
            }
        }
        Some(evicted)
    }

    /// Forgets everything; returns how many entries there were.
    pub fn clear(&self) -> u64 {
        let mut inner = self.lock();
        let removed = inner.entries.len() as u64;
        inner.entries.clear();
        removed
    }

    /// Every entry, oldest first, with the settings that shape recall.
    pub fn export(&self) -> MemoryExport {
        let inner = self.lock();
        MemoryExport {
            capacity: inner.capacity,
            similarity_threshold: SIMILARITY_THRESHOLD,
            entries: inner.entries.iter().map(|r| r.entry.clone()).collect(),
        }
    }

    /// The past incidents similar to `features`, and each root cause's
    /// track record over the closest of them.
    pub fn recall(&self, features: &[SignatureFeature]) -> Recall {
        let probe = Vector::of(features);
        let inner = self.lock();
        let mut similar: Vec<(f64, &MemoryEntry)> = inner
            .entries
            .iter()
            .map(|r| (probe.cosine(&r.vector), &r.entry))
            .filter(|(s, _)| *s >= SIMILARITY_THRESHOLD)
            .collect();
        // Most similar first; among equals, the newest.
        similar.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.recorded_at.cmp(&a.1.recorded_at)));
        similar.truncate(RECALL_KEEP);
        let mut fixes: Vec<FixTrackRecord> = Vec::new();
        for (_, entry) in &similar {
            for fix in &entry.fixes {
                let index = match fixes
                    .iter()
                    .position(|r| r.service == fix.service && r.fault == fix.fault)
                {
                    Some(index) => index,
                    None => {
                        fixes.push(FixTrackRecord {
                            service: fix.service.clone(),
                            fault: fix.fault.clone(),
                            healed: 0,
                            tried: 0,
                        });
                        fixes.len() - 1
                    }
                };
                fixes[index].tried += 1;
                fixes[index].healed += u32::from(fix.outcome == FixOutcome::Healed);
            }
        }
        fixes.sort_by(|a, b| {
            b.expected_success()
                .total_cmp(&a.expected_success())
                .then(b.tried.cmp(&a.tried))
        });
        Recall {
            similar: similar
                .into_iter()
                .map(|(similarity, entry)| RecalledIncident {
                    incident_id: entry.incident_id,
                    similarity: (similarity * 100.0).round() / 100.0,
                    healed_by: entry
                        .healing_fix()
                        .map(|f| format!("{} on {}", f.fault.replace('_', " "), f.service)),
                    resolution_seconds: entry.resolution_seconds,
                })
                .collect(),
            fixes,
        }
    }
}

impl Default for Memory {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;
    use crate::protocol::FixRecord;

    fn feature(service: &str, metric: &str, sigma: f64) -> SignatureFeature {
        SignatureFeature {
            service: service.into(),
            metric: metric.into(),
            sigma,
        }
    }

    fn entry(n: u128, features: Vec<SignatureFeature>, fixes: &[(&str, &str, FixOutcome)]) -> MemoryEntry {
        MemoryEntry {
            incident_id: Uuid::from_u128(n),
            recorded_at: Utc.timestamp_opt(1_700_000_000 + n as i64, 0).unwrap(),
            scenario_id: None,
            features,
            fixes: fixes
                .iter()
                .map(|(service, fault, outcome)| FixRecord {
                    service: (*service).into(),
                    fault: (*fault).into(),
                    playbook: "p".into(),
                    actions: vec!["restart_service".into()],
                    outcome: *outcome,
                })
                .collect(),
            resolution_seconds: 20.0,
        }
    }

    fn leak() -> Vec<SignatureFeature> {
        vec![
            feature("user-service", "memory", 9.0),
            feature("user-service", "latency_p99", 5.0),
            feature("api-gateway", "latency_p99", 4.0),
        ]
    }

    fn pool() -> Vec<SignatureFeature> {
        vec![
            feature("postgres-primary", "pool_usage", 11.0),
            feature("order-service", "error_rate", 7.0),
        ]
    }

    #[test]
    fn cosine_similarity_matches_a_hand_computed_value() {
        // a = (3, 4, 0), b = (3, 0, 5) over (x, y, z): 9 / (5 × √34).
        let a = [feature("s", "x", 3.0), feature("s", "y", 4.0)];
        let b = [feature("s", "z", 5.0), feature("s", "x", 3.0)];
        assert!((similarity(&a, &b) - 9.0 / (5.0 * 34f64.sqrt())).abs() < 1e-12);
        assert_eq!(similarity(&a, &[]), 0.0);
        assert_eq!(similarity(&leak(), &pool()), 0.0, "no series in common");
    }

    #[test]
    fn sigmas_are_capped_so_one_absurd_reading_cannot_dominate() {
        let sane = [feature("s", "x", 12.0), feature("s", "y", 12.0)];
        let absurd = [feature("s", "x", 1e6), feature("s", "y", 12.0)];
        assert!((similarity(&sane, &absurd) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn recall_finds_only_similar_incidents_and_scores_their_fixes() {
        let memory = Memory::new(10);
        let healed = FixOutcome::Healed;
        let failed = FixOutcome::Failed;
        memory.record(entry(1, leak(), &[("user-service", "memory_leak", healed)]));
        memory.record(entry(
            2,
            leak(),
            &[
                ("api-gateway", "cpu_saturation", failed),
                ("user-service", "memory_leak", healed),
            ],
        ));
        memory.record(entry(
            3,
            pool(),
            &[("postgres-primary", "connection_pool_exhaustion", healed)],
        ));

        let recall = memory.recall(&leak());
        assert_eq!(recall.similar.len(), 2, "{recall:?}");
        assert_eq!(
            recall.similar[0].incident_id,
            Uuid::from_u128(2),
            "newest first among equals"
        );
        assert_eq!(
            recall.similar[0].healed_by.as_deref(),
            Some("memory leak on user-service")
        );
        let leak_fix = recall.record_for("user-service", "memory_leak").unwrap();
        assert_eq!((leak_fix.healed, leak_fix.tried), (2, 2));
        let wrong = recall.record_for("api-gateway", "cpu_saturation").unwrap();
        assert!(wrong.dead_end());
        assert_eq!(recall.fixes[0].fault, "memory_leak", "best record first");
        assert!(
            recall
                .record_for("postgres-primary", "connection_pool_exhaustion")
                .is_none()
        );
    }

    #[test]
    fn track_records_are_smoothed_so_one_result_is_not_a_verdict() {
        let record = |healed, tried| FixTrackRecord {
            service: "s".into(),
            fault: "f".into(),
            healed,
            tried,
        };
        assert_eq!(record(0, 0).expected_success(), 0.5);
        assert!((record(1, 1).expected_success() - 2.0 / 3.0).abs() < 1e-12);
        assert!((record(0, 1).expected_success() - 1.0 / 3.0).abs() < 1e-12);
        assert!((record(4, 4).expected_success() - 5.0 / 6.0).abs() < 1e-12);
        assert!(!record(0, 0).dead_end() && !record(1, 3).dead_end() && record(0, 2).dead_end());
    }

    #[test]
    fn the_oldest_entry_is_evicted_beyond_capacity() {
        let memory = Memory::new(3);
        for n in 1..=3 {
            assert_eq!(memory.record(entry(n, leak(), &[])), Some(Vec::new()));
        }
        for n in 4..=5 {
            assert_eq!(memory.record(entry(n, leak(), &[])), Some(vec![Uuid::from_u128(n - 3)]));
        }
        let kept: Vec<u128> = memory
            .export()
            .entries
            .iter()
            .map(|e| e.incident_id.as_u128())
            .collect();
        assert_eq!(kept, [3, 4, 5]);
        assert_eq!(memory.clear(), 3);
        assert!(memory.is_empty() && memory.recall(&leak()).similar.is_empty());
    }

    #[test]
    fn a_disabled_memory_and_an_empty_signature_remember_nothing() {
        assert_eq!(Memory::new(0).record(entry(1, leak(), &[])), None);
        let memory = Memory::new(5);
        assert_eq!(memory.record(entry(1, Vec::new(), &[])), None);
        assert!(memory.is_empty());
    }

    proptest! {
        /// Similarity is symmetric, within 0..=1, and 1 against itself.
        #[test]
        fn similarity_is_a_bounded_symmetric_measure(
            a in proptest::collection::vec((0..6u8, 0..4u8, 0.0..50.0f64), 1..8),
            b in proptest::collection::vec((0..6u8, 0..4u8, 0.0..50.0f64), 1..8),
        ) {
            let to = |v: &[(u8, u8, f64)]| v
                .iter()
                .map(|(s, m, sigma)| feature(&format!("s{s}"), &format!("m{m}"), *sigma + 0.1))
                .collect::<Vec<_>>();
            let (a, b) = (to(&a), to(&b));
            let ab = similarity(&a, &b);
            prop_assert!((0.0..=1.0).contains(&ab));
            prop_assert!((ab - similarity(&b, &a)).abs() < 1e-12);
            // Duplicate series keep their first reading, so compare a
            // signature with itself as stored.
            prop_assert!((similarity(&a, &a) - 1.0).abs() < 1e-9);
        }
    }
}
