//! The estate's vocabulary: the faults the swarm diagnoses, the metrics it
//! reads, the remediations it runs. One definition each, shared by the
//! agents, the store and the browser; what a fault or an action *does* is
//! the twin's business (`twin::fault`, `twin::action`), where the rest of
//! each type's methods live.

use serde::{Deserialize, Serialize};

/// Every kind of fault the twin can simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Connections are held and never released, until the pool runs dry.
    ConnectionPoolExhaustion,
    /// A deploy leaks memory until instances run out of it and restart.
    MemoryLeak,
    /// Each request costs far more CPU than it should (a hot path under a
    /// traffic surge).
    CpuSaturation,
    /// A migration dropped an index: queries crawl and hold locks.
    SlowQuery,
    /// A deploy makes instances crash at start, over and over.
    CrashLoop,
    /// A third-party dependency answers slowly or not at all.
    DependencyTimeout,
    /// The service is cut off from the network.
    NetworkPartition,
    /// A runaway writer fills the disk.
    DiskExhaustion,
    /// The TLS certificate expired.
    CertificateExpiry,
    /// The cache process fails; reads fall through to its fallback.
    CacheFailure,
    /// Model inference slows down.
    ModelLatency,
    /// A new model version predicts worse.
    ModelAccuracyDrop,
    /// The input distribution moved away from the training data.
    DataDrift,
    /// A pipeline agent stops sending heartbeats.
    AgentHeartbeatLoss,
}

impl FaultKind {
    pub const ALL: [FaultKind; 14] = [
        Self::ConnectionPoolExhaustion,
        Self::MemoryLeak,
        Self::CpuSaturation,
        Self::SlowQuery,
        Self::CrashLoop,
        Self::DependencyTimeout,
        Self::NetworkPartition,
        Self::DiskExhaustion,
        Self::CertificateExpiry,
        Self::CacheFailure,
        Self::ModelLatency,
        Self::ModelAccuracyDrop,
        Self::DataDrift,
        Self::AgentHeartbeatLoss,
    ];

    /// The wire name (serde's).
    pub fn as_str(self) -> &'static str {
        crate::protocol::wire_name(&self)
    }

    /// A human name, as in "connection-pool exhaustion".
    pub fn label(self) -> &'static str {
        match self {
            Self::ConnectionPoolExhaustion => "connection-pool exhaustion",
            Self::MemoryLeak => "memory leak",
            Self::CpuSaturation => "CPU saturation",
            Self::SlowQuery => "slow queries / lock contention",
            Self::CrashLoop => "crash loop",
            Self::DependencyTimeout => "dependency timeout",
            Self::NetworkPartition => "network partition",
            Self::DiskExhaustion => "disk exhaustion",
            Self::CertificateExpiry => "certificate expiry",
            Self::CacheFailure => "cache failure",
            Self::ModelLatency => "model latency",
            Self::ModelAccuracyDrop => "model accuracy drop",
            Self::DataDrift => "data drift",
            Self::AgentHeartbeatLoss => "agent heartbeat loss",
        }
    }

    /// The fault at a service, as people say it: "memory leak on
    /// user-service".
    pub fn on(self, service: &str) -> String {
        format!("{} on {service}", self.label())
    }
}

/// Every remediation the twin understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    ScaleConnectionPool,
    RaiseTimeout,
    EnableCircuitBreaker,
    RestartInstances,
    ScaleOut,
    RollbackDeploy,
    FailoverDatabase,
    FlushCache,
    RestartCache,
    RenewCertificate,
    FreeDisk,
    EnableSafeMode,
    RollbackModel,
    TriggerRetraining,
    RestartAgent,
}

impl ActionKind {
    pub const ALL: [ActionKind; 15] = [
        Self::ScaleConnectionPool,
        Self::RaiseTimeout,
        Self::EnableCircuitBreaker,
        Self::RestartInstances,
        Self::ScaleOut,
        Self::RollbackDeploy,
        Self::FailoverDatabase,
        Self::FlushCache,
        Self::RestartCache,
        Self::RenewCertificate,
        Self::FreeDisk,
        Self::EnableSafeMode,
        Self::RollbackModel,
        Self::TriggerRetraining,
        Self::RestartAgent,
    ];

    /// The wire name (serde's).
    pub fn as_str(self) -> &'static str {
        crate::protocol::wire_name(&self)
    }

    /// A human phrase, as in "scale the connection pool".
    pub fn label(self) -> &'static str {
        match self {
            Self::ScaleConnectionPool => "Scale connection pool",
            Self::RaiseTimeout => "Raise call timeouts",
            Self::EnableCircuitBreaker => "Enable circuit breakers",
            Self::RestartInstances => "Restart instances",
            Self::ScaleOut => "Scale out",
            Self::RollbackDeploy => "Roll back deploy",
            Self::FailoverDatabase => "Fail over database",
            Self::FlushCache => "Flush cache",
            Self::RestartCache => "Restart cache",
            Self::RenewCertificate => "Renew certificate",
            Self::FreeDisk => "Free disk space",
            Self::EnableSafeMode => "Enable safe mode",
            Self::RollbackModel => "Roll back model",
            Self::TriggerRetraining => "Trigger retraining",
            Self::RestartAgent => "Restart agent",
        }
    }

    /// The action on a service, as people say it: "Restart cache on
    /// redis-cache".
    pub fn on(self, target: &str) -> String {
        format!("{} on {target}", self.label())
    }
}

/// Every metric the twin records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    #[serde(rename = "latency_p50_ms")]
    LatencyP50,
    #[serde(rename = "latency_p95_ms")]
    LatencyP95,
    #[serde(rename = "latency_p99_ms")]
    LatencyP99,
    ErrorRate,
    Rps,
    Cpu,
    Memory,
    PoolUsage,
    QueueDepth,
    Restarts,
    Heartbeat,
    /// Seconds since an agent's last heartbeat.
    #[serde(rename = "heartbeat_age_s")]
    HeartbeatAge,
    DiskUsage,
    CertDaysLeft,
    CacheHitRate,
    ModelAccuracy,
    FeaturePsi,
}

impl Metric {
    pub const COUNT: usize = 17;
    pub const ALL: [Metric; Self::COUNT] = [
        Self::LatencyP50,
        Self::LatencyP95,
        Self::LatencyP99,
        Self::ErrorRate,
        Self::Rps,
        Self::Cpu,
        Self::Memory,
        Self::PoolUsage,
        Self::QueueDepth,
        Self::Restarts,
        Self::Heartbeat,
        Self::HeartbeatAge,
        Self::DiskUsage,
        Self::CertDaysLeft,
        Self::CacheHitRate,
        Self::ModelAccuracy,
        Self::FeaturePsi,
    ];

    /// The wire name (serde's).
    pub fn as_str(self) -> &'static str {
        crate::protocol::wire_name(&self)
    }
}

/// A fault at a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RootCause {
    /// The service at fault.
    pub service: String,
    /// What is wrong with it.
    pub fault: FaultKind,
}

impl RootCause {
    /// "connection-pool exhaustion on postgres-primary".
    pub fn label(&self) -> String {
        self.fault.on(&self.service)
    }
}

/// One remediation aimed at one service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Remediation {
    /// What to do.
    pub kind: ActionKind,
    /// The service to do it to.
    pub target: String,
}

impl Remediation {
    /// "Scale connection pool on postgres-primary".
    pub fn label(&self) -> String {
        self.kind.on(&self.target)
    }
}
