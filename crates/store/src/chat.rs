//! The chat aggregate: sessions scoped to `(app_id, user_id)` and their messages, in the
//! tables the SPEC names. Runs add their messages inside their own transactions through
//! [`insert_message`] (and start their sessions in `run_start`'s).

use async_trait::async_trait;
use draftsmith_core::api::{ChatMessage, ChatRole, ChatSession, MessageStatus};
use draftsmith_core::{AppId, ChatSessionId, RunId, Timestamp, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::SqlStore;
use crate::error::{Result, StoreError};
use crate::sql::{self, Tx};

/// Chat sessions and their messages.
#[async_trait]
pub trait ChatStore: Send + Sync {
    /// One chat session.
    async fn chat_session(&self, id: ChatSessionId) -> Result<ChatSession>;
    /// A user's sessions on an app, most recent first.
    async fn chat_sessions(&self, app: AppId, user: &UserId) -> Result<Vec<ChatSession>>;
    /// A session's messages, oldest first.
    async fn chat_messages(&self, session: ChatSessionId) -> Result<Vec<ChatMessage>>;
    /// Adds a message to a session.
    async fn add_chat_message(
        &self,
        session: ChatSessionId,
        run: Option<RunId>,
        role: ChatRole,
        content: &str,
        status: MessageStatus,
    ) -> Result<ChatMessage>;
    /// The session's persisted history summary, if one was written.
    async fn chat_summary(&self, session: ChatSessionId) -> Result<Option<ChatSummary>>;
    /// Stores the session's history summary, replacing any earlier one.
    async fn save_chat_summary(
        &self,
        session: ChatSessionId,
        through_message_id: &str,
        summary: &str,
    ) -> Result<ChatSummary>;
}

/// A chat's history summary: it stands for every message up to and including
/// `through_message_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSummary {
    /// The last message it covers.
    pub through_message_id: String,
    /// The summary.
    pub summary: String,
    /// When it was written.
    pub created_at: Timestamp,
}

/// Longest session title, in characters.
const TITLE_CHARS: usize = 80;

const SESSION_COLUMNS: &str = "id, app_id, user_id, title, created_at, updated_at";
const MESSAGE_COLUMNS: &str = "id, session_id, run_id, role, content, status, created_at";
/// What a message read selects: its columns and its attachments (JSON, or NULL for none).
const MESSAGE_READ_COLUMNS: &str =
    "id, session_id, run_id, role, content, status, created_at, attachments";

/// A session's title: its first prompt's first line, shortened.
pub(crate) fn session_title(input: &str) -> String {
    let line = input
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("New chat")
        .trim();
    let mut title: String = line.chars().take(TITLE_CHARS).collect();
    if line.chars().count() > TITLE_CHARS {
        title.push('…');
    }
    title
}

fn session_from_row(row: &AnyRow) -> Result<ChatSession> {
    Ok(ChatSession {
        id: sql::id(row, "id")?,
        app_id: sql::id(row, "app_id")?,
        user_id: UserId(row.try_get("user_id")?),
        title: row.try_get("title")?,
        created_at: sql::time(row, "created_at")?,
        updated_at: sql::time(row, "updated_at")?,
    })
}

fn message_from_row(row: &AnyRow) -> Result<ChatMessage> {
    Ok(ChatMessage {
        id: row.try_get("id")?,
        session_id: sql::id(row, "session_id")?,
        run_id: sql::id_opt(row, "run_id")?,
        role: sql::wire(row, "role")?,
        status: sql::wire(row, "status")?,
        content: row.try_get("content")?,
        attachments: match row.try_get::<Option<String>, _>("attachments")? {
            Some(_) => sql::json(row, "attachments")?,
            None => Vec::new(),
        },
        created_at: sql::time(row, "created_at")?,
    })
}

/// Whether `session` is `user`'s on `app`.
pub(crate) async fn session_belongs(
    tx: &mut Tx,
    session: ChatSessionId,
    app: AppId,
    user: &UserId,
) -> Result<bool> {
    let found = sqlx::query(
        "SELECT id FROM published_app_coding_chat_sessions \
         WHERE id = $1 AND app_id = $2 AND user_id = $3",
    )
    .bind(session.to_string())
    .bind(app.to_string())
    .bind(&user.0)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}

/// Records `message` (from [`new_message`]) and moves its session's `updated_at`.
pub(crate) async fn insert_message(tx: &mut Tx, message: &ChatMessage) -> Result<()> {
    let [insert, _] = message_statements(1);
    bind_message(sqlx::query(&insert), message)?
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE published_app_coding_chat_sessions SET updated_at = $2 WHERE id = $1")
        .bind(message.session_id.to_string())
        .bind(message.created_at.as_micros())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A message to write with [`insert_message`]: a fresh id, no attachments.
pub(crate) fn new_message(
    session: ChatSessionId,
    run: Option<RunId>,
    role: ChatRole,
    content: &str,
    status: MessageStatus,
    now: Timestamp,
) -> ChatMessage {
    ChatMessage {
        id: uuid::Uuid::new_v4().to_string(),
        session_id: session,
        run_id: run,
        role,
        content: content.to_owned(),
        status,
        attachments: Vec::new(),
        created_at: now,
    }
}

/// On PostgreSQL, the parts of a `WITH` that insert a message (parameters `$first` on, in
/// [`bind_message`]'s order) and note the time on its session, as [`insert_message`] does.
pub(crate) fn message_ctes(first: usize) -> String {
    let [message, session] = message_statements(first);
    format!("message AS ({message}), session AS ({session})")
}

/// The two statements that insert a message (parameters `$first` on, in [`bind_message`]'s
/// order) and note the time on its session.
pub(crate) fn message_statements(first: usize) -> [String; 2] {
    [
        format!(
            "INSERT INTO published_app_coding_chat_messages ({MESSAGE_COLUMNS}) VALUES ({})",
            sql::Marks::Numbered.list(first, 7)
        ),
        format!(
            "UPDATE published_app_coding_chat_sessions SET updated_at = ${} WHERE id = ${}",
            first + 6,
            first + 1
        ),
    ]
}

/// Binds a message's columns, in [`MESSAGE_COLUMNS`] order.
pub(crate) fn bind_message<'q>(
    query: sql::Query<'q>,
    message: &ChatMessage,
) -> Result<sql::Query<'q>> {
    Ok(query
        .bind(message.id.clone())
        .bind(message.session_id.to_string())
        .bind(message.run_id.map(|r| r.to_string()))
        .bind(sql::wire_name(&message.role)?)
        .bind(message.content.clone())
        .bind(sql::wire_name(&message.status)?)
        .bind(message.created_at.as_micros()))
}

#[async_trait]
impl ChatStore for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, fields(session = %id))]
    async fn chat_session(&self, id: ChatSessionId) -> Result<ChatSession> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM published_app_coding_chat_sessions WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("chat session"))?;
        session_from_row(&row)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %app))]
    async fn chat_sessions(&self, app: AppId, user: &UserId) -> Result<Vec<ChatSession>> {
        let rows = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM published_app_coding_chat_sessions \
             WHERE app_id = $1 AND user_id = $2 ORDER BY updated_at DESC, id DESC"
        ))
        .bind(app.to_string())
        .bind(&user.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session = %session))]
    async fn chat_messages(&self, session: ChatSessionId) -> Result<Vec<ChatMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_READ_COLUMNS} FROM published_app_coding_chat_messages \
             WHERE session_id = $1 ORDER BY created_at, id"
        ))
        .bind(session.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(message_from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session = %session, ?role))]
    async fn add_chat_message(
        &self,
        session: ChatSessionId,
        run: Option<RunId>,
        role: ChatRole,
        content: &str,
        status: MessageStatus,
    ) -> Result<ChatMessage> {
        let mut tx = self.writer.begin().await?;
        let now = Timestamp::now();
        let message = new_message(session, run, role, content, status, now);
        insert_message(&mut tx, &message).await?;
        tx.commit().await?;
        Ok(message)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session = %session))]
    async fn chat_summary(&self, session: ChatSessionId) -> Result<Option<ChatSummary>> {
        let row = sqlx::query(
            "SELECT through_message_id, summary, created_at FROM chat_summaries \
             WHERE session_id = $1",
        )
        .bind(session.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(ChatSummary {
                through_message_id: row.try_get("through_message_id")?,
                summary: row.try_get("summary")?,
                created_at: sql::time(&row, "created_at")?,
            })
        })
        .transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session = %session))]
    async fn save_chat_summary(
        &self,
        session: ChatSessionId,
        through_message_id: &str,
        summary: &str,
    ) -> Result<ChatSummary> {
        let now = Timestamp::now();
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO chat_summaries (session_id, through_message_id, summary, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (session_id) DO UPDATE SET \
             through_message_id = excluded.through_message_id, summary = excluded.summary, \
             created_at = excluded.created_at",
        )
        .bind(session.to_string())
        .bind(through_message_id)
        .bind(summary)
        .bind(now.as_micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ChatSummary {
            through_message_id: through_message_id.to_owned(),
            summary: summary.to_owned(),
            created_at: now,
        })
    }
}
