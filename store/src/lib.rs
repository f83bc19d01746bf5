//! Antibody's store: the durable event log and the tables derived from it,
//! on SQLite (the default, one file, WAL) or PostgreSQL (shared
//! deployments), through sqlx's `Any` driver and one set of portable
//! migrations.
//!
//! The store is event-sourced. [`Store::append`] (the engine's
//! [`Journal`]) writes a batch of events and, in the same transaction,
//! every row derived from them: incidents, consensus votes, healing
//! actions, notifications and the config history. Nothing else writes.
//! Sequence numbers come from the `log_head` row, bumped inside that
//! transaction, so they are gap-free even with several writers.

mod analytics;
mod append;
mod cluster;
mod read;
mod rows;

use std::{str::FromStr, sync::Arc, time::Duration};

use engine::{
    journal::{Journal, JournalError, JournalFuture, Stored, Tailed, Unsequenced},
    protocol::IncidentTelemetry,
};
use sqlx::{
    AnyPool, Executor,
    any::{AnyConnectOptions, AnyPoolOptions},
};
use tracing::info;

pub use cluster::EMBEDDED_ESTATE;
pub use engine::protocol::{EventPage, IncidentDetail, IncidentPage};
pub use read::{AuditFilter, IncidentFilter};

/// The embedded migrations, run at connect.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// When a SQLite commit counts as done: the durability the log promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    /// `synchronous = FULL`: every commit waits for its WAL frames to reach
    /// the disk (an fsync per transaction). A published event survives a
    /// killed process and a power cut.
    #[default]
    Full,
    /// `synchronous = NORMAL`: commits reach the OS at once and the disk at
    /// the next checkpoint. A published event survives a killed process;
    /// a power cut or a kernel crash may lose the newest transactions
    /// (the database stays consistent), although dashboards saw them.
    Normal,
}

impl SqliteSync {
    /// The pragma's value.
    fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// Why the store could not open or answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ANTIBODY_DATABASE_URL: {0}")]
    Url(String),
    #[error("cannot create the database folder {path}: {source}")]
    Folder { path: String, source: std::io::Error },
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("a stored event does not parse: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Refused(String),
}

/// A cheap-to-clone handle to the database.
#[derive(Clone)]
pub struct Store {
    /// Connections.
    pool: AnyPool,
    /// What is behind them.
    backend: Backend,
    /// The URL it was opened with.
    url: String,
    /// Set once this instance joined others on a PostgreSQL.
    member: Option<Arc<cluster::Member>>,
    /// A SQLite file's lock, held while this process uses it: SQLite is one
    /// instance's. Released by [`Store::close`], or when the process ends.
    file_lock: Arc<std::sync::Mutex<Option<std::fs::File>>>,
}

impl Backend {
    /// The backend a URL names, or why it names none.
    pub fn of(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::Url(format!(
                "`{url}` is neither `sqlite://PATH` nor `postgres://…`"
            )))
        }
    }
}

/// The file behind a SQLite URL, if it names one.
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(":memory:")).then_some(path)
}

impl Store {
    /// Opens (creating when missing) the database at `url` and migrates it;
    /// a SQLite file commits with `synchronous = FULL`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, SqliteSync::Full).await
    }

    /// [`Store::connect`], with a SQLite file's commits as `sync` says
    /// (PostgreSQL's durability is its own server's setting).
    pub async fn connect_with(url: &str, sync: SqliteSync) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url)?;
        let given = url.to_owned();
        let mut url = url.to_owned();
        let mut pool = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            match sqlite_path(&url) {
                Some(path) => {
                    if let Some(folder) = std::path::Path::new(path)
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                    {
                        std::fs::create_dir_all(folder).map_err(|source| StoreError::Folder {
                            path: folder.display().to_string(),
                            source,
                        })?;
                    }

                    if !url.contains("mode=") {
                        url.push_str(if url.contains('?') { "&mode=rwc" } else { "?mode=rwc" });
                    }
                    pool = pool.max_connections(8);
                }
                // Each connection to `:memory:` is its own database, gone
                // when the connection closes: keep exactly one, forever.
                None => {
                    pool = pool
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                }
            }
            pool = pool.after_connect(move |conn, _| {
                Box::pin(async move {
                    // WAL: readers never block the writer. FULL: a commit
                    // is on disk before the event is published (see
                    // `SqliteSync`). The busy timeout lets a second process
                    // wait for the lock.
                    let pragmas = format!(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                        sync.pragma()
                    );
                    conn.execute(pragmas.as_str()).await?;
                    Ok(())
                })
            });
        } else {
            pool = pool.max_connections(16);
        }
        let options = AnyConnectOptions::from_str(&url).map_err(|e| StoreError::Url(e.to_string()))?;
        let pool = pool.connect_with(options).await?;
        MIGRATOR.run(&pool).await?;
        let store = Self {
            pool,
            backend,
            url: given,
            member: None,
            file_lock: Arc::default(),
        };
        store.init_head().await?;
        info!(backend = ?backend, "store ready");
        Ok(store)
    }

    /// Claims a SQLite file for this process, the one instance it may
    /// serve: refused, naming the holder, when another process has it.
    /// (PostgreSQL is shared: see [`Store::join`].)
    pub fn claim_file(&self) -> Result<(), StoreError> {
        if let Some(path) = sqlite_path(&self.url) {
            *self.file_lock.lock().expect("file lock poisoned") = Some(lock_sqlite_file(path)?);
        }
        Ok(())
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The store as the engine's journal.
    pub fn journal(&self) -> Arc<dyn Journal> {
        Arc::new(self.clone())
    }

    /// Closes every connection, and lets another process open a SQLite
    /// file.
    pub async fn close(&self) {
        self.pool.close().await;
        self.file_lock.lock().expect("file lock poisoned").take();
    }
}

/// Locks `{path}.lock` for this process, or says which instance holds it.
fn lock_sqlite_file(path: &str) -> Result<std::fs::File, StoreError> {
    let lock_path = format!("{path}.lock");
    let refused = |why: String| {
        StoreError::Refused(format!(
            "{path} is in use by another Antibody instance ({why}): SQLite is one instance's file. To run \
             several instances, give them one PostgreSQL (ANTIBODY_DATABASE_URL=postgres://…) and one \
             external estate (ANTIBODY_TWIN_URL or ANTIBODY_ESTATE=prometheus)"
        ))
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StoreError::Folder {
            path: lock_path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
            return Err(refused(format!("process {}", holder.trim())));
        }
        Err(std::fs::TryLockError::Error(source)) => {
            return Err(StoreError::Folder {
                path: lock_path,
                source,
            });
        }
    }
    use std::io::Write;
    // Who holds it, for the next one's message.
    let _ = file.set_len(0).and_then(|()| write!(file, "{}", std::process::id()));
    Ok(file)
}

impl Journal for Store {
    fn append<'a>(&'a self, batch: &'a [Unsequenced]) -> JournalFuture<'a, Stored> {
        Box::pin(async move { self.append_batch(batch).await.map_err(|e| JournalError(e.to_string())) })
    }

    fn read_after(&self, after: u64, limit: usize) -> JournalFuture<'_, Vec<Tailed>> {
        Box::pin(async move {
            self.tail_after(after, limit)
                .await
                .map_err(|e| JournalError(e.to_string()))
        })
    }

    fn keep_telemetry<'a>(&'a self, telemetry: &'a IncidentTelemetry) -> JournalFuture<'a, ()> {
        Box::pin(async move {
            self.put_telemetry(telemetry)
                .await
                .map_err(|e| JournalError(e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests;
