//! Several instances on one PostgreSQL: membership, leases, decisions, and
//! the notifications that wake every instance's tail.
//!
//! An instance [`Store::join`]s the database (refused when it would share
//! it with an instance it cannot share an estate with), then renews its
//! heartbeat and leases through the engine's [`Coordination`] port. Every
//! time is the database's clock (`NOW_MS`), so hosts with skewed clocks
//! agree on what expired. SQLite is one instance's file: a second process
//! on it is refused at connect (`Store::connect` locks it).

use std::{collections::HashMap, str::FromStr, sync::Arc, time::Duration};

use engine::{
    cluster::{Coordination, Takeover},
    journal::{Fence, JournalError, JournalFuture, LeaseKind, Tailed, Unsequenced},
    protocol::{ActionResult, Approval},
};
use sqlx::{Any, Row, Transaction};
use tokio::sync::Notify;
use tracing::{info, warn};
use uuid::Uuid;

use crate::{Backend, Store, StoreError, rows::envelope};

/// Now, in milliseconds since the epoch, on the database's clock.
const NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

/// The channel every append notifies, with its last `seq`.
const CHANNEL: &str = "antibody_events";

/// Most leases one reaper pass takes over.
const TAKEOVERS_PER_PASS: i64 = 100;

/// This instance, once it joined the others on a PostgreSQL.
#[derive(Debug)]
pub(crate) struct Member {
    /// Its id: the host name and a random suffix, as leases and `events.origin` name it.
    pub(crate) instance: String,
    /// What it watches (every instance of a database must watch one estate).
    estate: String,
    /// How long its leases and heartbeat last unless renewed.
    lease_ttl: Duration,
    /// The database URL, for the LISTEN connection.
    url: String,
}

impl Member {
    fn ttl_ms(&self) -> i64 {
        self.lease_ttl.as_millis() as i64
    }
}

/// The embedded twin lives inside one process: nobody else sees it.
pub const EMBEDDED_ESTATE: &str = "the embedded twin";

/// Why a live instance and this one cannot share the database, if they
/// cannot.
fn conflict(mine: &str, other_id: &str, theirs: &str) -> Option<String> {
    if mine == EMBEDDED_ESTATE {
        Some(format!(
            "instance {other_id} is live on this database, and this one would run the embedded twin, which no \
             other instance can see: several instances must share one external estate. Set ANTIBODY_TWIN_URL \
             (antibody twin serve) or ANTIBODY_ESTATE=prometheus on every instance"
        ))
    } else if theirs == EMBEDDED_ESTATE {
        Some(format!(
            "instance {other_id} on this database runs the embedded twin, which no other instance can see: \
             stop it, or restart it on the external estate this one watches ({mine})"
        ))
    } else if theirs != mine {
        Some(format!(
            "instance {other_id} watches {theirs}, and this one {mine}: the instances of one database must \
             watch one estate"
        ))
    } else {
        None
    }
}

impl Store {
    /// Joins the instances on this PostgreSQL as a new instance watching
    /// `estate`, with leases of `lease_ttl`. Refused (with the reason) when
    /// a live instance runs the embedded twin, or this one would, or they
    /// watch different estates. A killed instance stops counting as live
    /// once its heartbeat is `lease_ttl` old, so this waits that long for a
    /// conflicting one before refusing.
    pub async fn join(self, estate: &str, lease_ttl: Duration) -> Result<Self, StoreError> {
        assert_eq!(self.backend, Backend::Postgres, "only PostgreSQL is shared");
        let host = hostname();
        let member = Member {
            instance: format!("{host}-{}", &Uuid::new_v4().simple().to_string()[..6]),
            estate: estate.to_owned(),
            lease_ttl,
            url: self.url.clone(),
        };
        let deadline = tokio::time::Instant::now() + lease_ttl + Duration::from_secs(1);
        loop {
            match self.register(&member).await? {
                None => break,
                Some(reason) if tokio::time::Instant::now() >= deadline => return Err(StoreError::Refused(reason)),
                Some(reason) => {
                    warn!(%reason, "waiting for the other instance's heartbeat to go stale (was it killed?)");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        info!(instance = %member.instance, estate, ttl_s = lease_ttl.as_secs_f64(), "joined the instances on this database");
        Ok(Self {
            member: Some(Arc::new(member)),
            ..self
        })
    }

    /// Registers `member` unless a live instance conflicts; the conflict's
    /// reason otherwise.
    async fn register(&self, member: &Member) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // One joiner at a time, so two instances of the embedded twin
        // starting together cannot both see the other missing.
        sqlx::query("LOCK TABLE instances IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        let live = sqlx::query(&format!(
            "SELECT id, estate FROM instances WHERE heartbeat_ms >= {NOW_MS} - $1 ORDER BY started_ms"
        ))
        .bind(member.ttl_ms())
        .fetch_all(&mut *tx)
        .await?;
        for row in &live {
            let (id, estate): (String, String) = (row.try_get("id")?, row.try_get("estate")?);
            if let Some(reason) = conflict(&member.estate, &id, &estate) {
                return Ok(Some(reason));
            }
        }
        sqlx::query(&format!(
            "INSERT INTO instances (id, estate, started_ms, heartbeat_ms) VALUES ($1, $2, {NOW_MS}, {NOW_MS})"
        ))
        .bind(&member.instance)
        .bind(&member.estate)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(None)
    }

    /// This instance's id, once it joined others on a PostgreSQL.
    pub fn instance(&self) -> Option<&str> {
        self.member.as_deref().map(|m| m.instance.as_str())
    }

    /// The store as the engine's coordination port, once joined.
    pub fn coordination(&self) -> Option<Arc<dyn Coordination>> {
        self.member
            .is_some()
            .then(|| Arc::new(self.clone()) as Arc<dyn Coordination>)
    }

    /// Listens for appends (every instance's) and wakes `wake` for each,
    /// and after every reconnect, since notifications sent while the
    /// connection was down are lost. Runs until the process ends.
    pub fn listen(&self, wake: Arc<Notify>) {
        let Some(member) = self.member.clone() else { return };
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                match listen_once(&member, &wake).await {
                    Ok(()) => failures = 0,
                    Err(error) => {
                        failures += 1;
                        warn!(%error, failures, "the LISTEN connection failed; reconnecting");
                    }
                }
                metrics::counter!("antibody_event_listen_reconnects_total").increment(1);
                // Whatever was notified meanwhile is read by the catch-up.
                wake.notify_one();
                tokio::time::sleep(Duration::from_millis(200 * u64::from(failures.min(10)))).await;
            }
        });
    }

    /// Checks the fences of `batch` inside `tx`: the positions of the events
    /// whose fence does not hold. Without membership (SQLite, or a lone
    /// instance before joining) nothing is fenced.
    pub(crate) async fn check_fences(
        &self,
        tx: &mut Transaction<'static, Any>,
        batch: &[Unsequenced],
    ) -> Result<Vec<usize>, StoreError> {
        let Some(member) = &self.member else {
            return Ok(Vec::new());
        };
        let mut verdicts: HashMap<(Uuid, u64), bool> = HashMap::new();
        let mut refused = Vec::new();
        for (index, event) in batch.iter().enumerate() {
            let holds = match event.fence {
                None => true,
                Some(Fence::Open { subject, kind }) => {
                    let opened = open_lease(tx, member, subject, kind).await?;
                    verdicts.insert((subject, 1), opened);
                    opened
                }
                Some(Fence::Holds { subject, epoch }) => match verdicts.get(&(subject, epoch)) {
                    Some(&holds) => holds,
                    None => {
                        let holds = holds_lease(tx, member, subject, epoch).await?;
                        verdicts.insert((subject, epoch), holds);
                        holds
                    }
                },
            };
            if !holds {
                refused.push(index);
            }
        }
        Ok(refused)
    }

    /// Notifies every listening instance that the log reached `last_seq`
    /// (delivered at commit; PostgreSQL only).
    pub(crate) async fn notify_appended(
        &self,
        tx: &mut Transaction<'static, Any>,
        last_seq: i64,
    ) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(last_seq.to_string())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Stored events after `after`, marked with whether this instance wrote
    /// them.
    pub(crate) async fn tail_after(&self, after: u64, limit: usize) -> Result<Vec<Tailed>, StoreError> {
        let mine = self.instance();
        sqlx::query("SELECT seq, ts, body, origin FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after.min(i64::MAX as u64) as i64)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let origin: Option<String> = row.try_get("origin")?;
                Ok(Tailed {
                    envelope: envelope(row)?,
                    local: origin.is_some() && origin.as_deref() == mine,
                })
            })
            .collect()
    }

    fn member(&self) -> &Member {
        self.member
            .as_deref()
            .expect("coordination is only handed out once joined")
    }

    async fn renew_leases(&self, held: &[(Uuid, u64)]) -> Result<Vec<(Uuid, u64)>, StoreError> {
        let member = self.member();
        sqlx::query(&format!(
            "INSERT INTO instances (id, estate, started_ms, heartbeat_ms) VALUES ($1, $2, {NOW_MS}, {NOW_MS}) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms"
        ))
        .bind(&member.instance)
        .bind(&member.estate)
        .execute(&self.pool)
        .await?;
        let renewed: Vec<(Uuid, u64)> = sqlx::query(&format!(
            "UPDATE leases SET expires_ms = {NOW_MS} + $2 WHERE owner = $1 AND NOT released RETURNING subject, epoch"
        ))
        .bind(&member.instance)
        .bind(member.ttl_ms())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| Ok((uuid(row.try_get("subject")?)?, row.try_get::<i64, _>("epoch")? as u64)))
        .collect::<Result<_, StoreError>>()?;
        let mut lost = Vec::new();
        for &(subject, epoch) in held.iter().filter(|lease| !renewed.contains(lease)) {
            // Not renewed: stored yet? (A lease opens with its first event,
            // which may still be on its way.)
            let stored = sqlx::query("SELECT 1 FROM leases WHERE subject = $1")
                .bind(subject.to_string())
                .fetch_optional(&self.pool)
                .await?;
            if stored.is_some() {
                lost.push((subject, epoch));
            }
        }
        Ok(lost)
    }

    /// Takes over expired leases of other instances. Never its own: an
    /// instance whose renewals lapsed (its database was away) renews them
    /// on its next pass, unless another instance took them first.
    async fn take_over(&self) -> Result<Vec<Takeover>, StoreError> {
        let member = self.member();
        let rows = sqlx::query(&format!(
            "WITH expired AS (SELECT subject, owner FROM leases WHERE NOT released AND expires_ms < {NOW_MS} \
             AND owner <> $1 ORDER BY expires_ms LIMIT $3 FOR UPDATE SKIP LOCKED) \
             UPDATE leases SET owner = $1, epoch = leases.epoch + 1, expires_ms = {NOW_MS} + $2 FROM expired \
             WHERE leases.subject = expired.subject \
             RETURNING leases.subject, leases.kind, leases.epoch, expired.owner AS previous"
        ))
        .bind(&member.instance)
        .bind(member.ttl_ms())
        .bind(TAKEOVERS_PER_PASS)
        .fetch_all(&self.pool)
        .await?;
        let mut taken = Vec::with_capacity(rows.len());
        for row in &rows {
            let subject = uuid(row.try_get("subject")?)?;
            let kind = match row.try_get::<String, _>("kind")?.as_str() {
                "timeline" => LeaseKind::Timeline,
                _ => LeaseKind::Incident,
            };
            let run = match kind {
                LeaseKind::Timeline => self.timeline_run(subject).await?,
                LeaseKind::Incident => None,
            };
            taken.push(Takeover {
                subject,
                kind,
                epoch: row.try_get::<i64, _>("epoch")? as u64,
                previous_owner: row.try_get("previous")?,
                run,
            });
        }
        Ok(taken)
    }

    async fn claim(&self, decided: &Approval) -> Result<Result<(), Approval>, StoreError> {
        let claimed = sqlx::query(
            "INSERT INTO approval_decisions (approval_id, body) VALUES ($1, $2) ON CONFLICT (approval_id) DO NOTHING",
        )
        .bind(decided.approval_id.to_string())
        .bind(serde_json::to_string(decided).expect("protocol types always serialize"))
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if claimed {
            return Ok(Ok(()));
        }
        let first = self.recorded_decision(decided.approval_id).await?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "approval {}: no decision after a conflict",
                decided.approval_id
            ))
        })?;
        Ok(Err(first))
    }

    async fn recorded_decision(&self, id: Uuid) -> Result<Option<Approval>, StoreError> {
        let row = sqlx::query("SELECT body FROM approval_decisions WHERE approval_id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let body: String = row.try_get("body")?;
            serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("decision {id}: {e}")))
        })
        .transpose()
    }

    async fn register_result(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO action_results (action_id, owner) VALUES ($1, $2) ON CONFLICT (action_id) DO NOTHING")
            .bind(id)
            .bind(&self.member().instance)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn record_result(&self, id: &str, result: &ActionResult) -> Result<bool, StoreError> {
        let taken = sqlx::query("UPDATE action_results SET body = $2 WHERE action_id = $1 AND body IS NULL")
            .bind(id)
            .bind(serde_json::to_string(result).expect("protocol types always serialize"))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(taken == 1)
    }

    async fn posted_result(&self, id: &str) -> Result<Option<ActionResult>, StoreError> {
        let row = sqlx::query("DELETE FROM action_results WHERE action_id = $1 AND body IS NOT NULL RETURNING body")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let body: String = row.try_get("body")?;
            serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("action result {id}: {e}")))
        })
        .transpose()
    }

    async fn unregister_result(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM action_results WHERE action_id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn leave_now(&self) -> Result<(), StoreError> {
        let member = self.member();
        sqlx::query("UPDATE leases SET expires_ms = 0 WHERE owner = $1 AND NOT released")
            .bind(&member.instance)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(&member.instance)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Opens `subject`'s lease for `member`; false when it already has one.
async fn open_lease(
    tx: &mut Transaction<'static, Any>,
    member: &Member,
    subject: Uuid,
    kind: LeaseKind,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(&format!(
        "INSERT INTO leases (subject, kind, owner, epoch, expires_ms, released) \
         VALUES ($1, $2, $3, 1, {NOW_MS} + $4, FALSE) ON CONFLICT (subject) DO NOTHING"
    ))
    .bind(subject.to_string())
    .bind(kind.as_str())
    .bind(&member.instance)
    .bind(member.ttl_ms())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Whether `member` still holds `subject`'s lease at `epoch`. The row is
/// locked to the commit, so a takeover waits for this append and follows it.
async fn holds_lease(
    tx: &mut Transaction<'static, Any>,
    member: &Member,
    subject: Uuid,
    epoch: u64,
) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT owner, epoch, released FROM leases WHERE subject = $1 FOR SHARE")
        .bind(subject.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(false) };
    let (owner, held, released): (String, i64, bool) =
        (row.try_get("owner")?, row.try_get("epoch")?, row.try_get("released")?);
    Ok(owner == member.instance && held as u64 == epoch && !released)
}

/// One LISTEN session: wakes `wake` after connecting (to catch up) and on
/// every notification; returns when the connection drops.
async fn listen_once(member: &Member, wake: &Notify) -> Result<(), sqlx::Error> {
    let options = sqlx::postgres::PgConnectOptions::from_str(&member.url)?
        .application_name(&format!("antibody-listen {}", member.instance));
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    wake.notify_one();
    loop {
        match listener.try_recv().await? {
            Some(_) => wake.notify_one(),
            // The connection dropped: sqlx reconnects on the next call, but
            // a fresh session says so in the metrics and catches up.
            None => return Ok(()),
        }
    }
}

fn uuid(text: String) -> Result<Uuid, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("`{text}` is not a UUID: {e}")))
}

/// This host's name, for instance ids a person can place.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "antibody".to_owned())
}

fn journal_error(error: StoreError) -> JournalError {
    JournalError(error.to_string())
}

impl Coordination for Store {
    fn instance(&self) -> &str {
        &self.member().instance
    }

    fn lease_ttl(&self) -> Duration {
        self.member().lease_ttl
    }

    fn renew<'a>(&'a self, held: &'a [(Uuid, u64)]) -> JournalFuture<'a, Vec<(Uuid, u64)>> {
        Box::pin(async move { self.renew_leases(held).await.map_err(journal_error) })
    }

    fn take_over_expired(&self) -> JournalFuture<'_, Vec<Takeover>> {
        Box::pin(async move { self.take_over().await.map_err(journal_error) })
    }

    fn claim_decision<'a>(&'a self, decided: &'a Approval) -> JournalFuture<'a, Result<(), Approval>> {
        Box::pin(async move { self.claim(decided).await.map_err(journal_error) })
    }

    fn decision(&self, approval: Uuid) -> JournalFuture<'_, Option<Approval>> {
        Box::pin(async move { self.recorded_decision(approval).await.map_err(journal_error) })
    }

    fn leave(&self) -> JournalFuture<'_, ()> {
        Box::pin(async move { self.leave_now().await.map_err(journal_error) })
    }

    fn expect_result<'a>(&'a self, id: &'a str) -> JournalFuture<'a, ()> {
        Box::pin(async move { self.register_result(id).await.map_err(journal_error) })
    }

    fn post_result<'a>(&'a self, id: &'a str, result: &'a ActionResult) -> JournalFuture<'a, bool> {
        Box::pin(async move { self.record_result(id, result).await.map_err(journal_error) })
    }

    fn take_result<'a>(&'a self, id: &'a str) -> JournalFuture<'a, Option<ActionResult>> {
        Box::pin(async move { self.posted_result(id).await.map_err(journal_error) })
    }

    fn forget_result<'a>(&'a self, id: &'a str) -> JournalFuture<'a, ()> {
        Box::pin(async move { self.unregister_result(id).await.map_err(journal_error) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_twin_shares_a_database_with_nobody() {
        let twin = "the twin at http://twin:9000";
        assert!(
            conflict(EMBEDDED_ESTATE, "a", twin)
                .unwrap()
                .contains("ANTIBODY_TWIN_URL")
        );
        assert!(
            conflict(twin, "a", EMBEDDED_ESTATE)
                .unwrap()
                .contains("runs the embedded twin")
        );
        assert!(conflict(EMBEDDED_ESTATE, "a", EMBEDDED_ESTATE).is_some());
        assert!(
            conflict(twin, "a", "prometheus at http://p:9090")
                .unwrap()
                .contains("one estate")
        );
        assert_eq!(conflict(twin, "a", twin), None);
    }
}
