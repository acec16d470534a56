//! Storage failures a caller can act on, and the database errors it cannot.

/// Result of a store call.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named kind of record does not exist. Not retryable.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The draft is at `current`, not the revision the caller expected. Retry on `current`.
    #[error("the draft is at revision {current}")]
    RevisionConflict {
        /// The draft's revision now.
        current: i64,
    },
    /// The app already has an active run (`run_id`, when it could be read back). Not
    /// retryable until that run ends.
    #[error("the app already has an active run")]
    RunActive {
        /// The active run.
        run_id: Option<draftsmith_core::RunId>,
    },
    /// Another resource of the same kind and owner has this name. Not retryable.
    #[error("the name {0:?} is taken")]
    NameTaken(String),
    /// The run has reached a terminal state and accepts no more events.
    #[error("the run has already ended")]
    RunEnded,
    /// A stored value could not be read back; the database holds something unexpected.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The database failed or is unreachable; retrying may help.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Schema migrations failed at start.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}
