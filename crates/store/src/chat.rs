//! Chat sessions and their messages, scoped to `(app_id, user_id)`, in the tables the SPEC
//! names.

use draftsmith_core::api::{ChatMessage, ChatRole, ChatSession, MessageStatus};
use draftsmith_core::{AppId, ChatSessionId, RunId, Timestamp, UserId};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::{Result, StoreError};

/// Longest session title, in characters.
const TITLE_CHARS: usize = 80;

/// A session's title: its first prompt's first line, shortened.
pub(crate) fn new_session_title(input: &str) -> String {
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
    let id: String = row.try_get("id")?;
    let app: String = row.try_get("app_id")?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("chat session {id}: {what}"));
    Ok(ChatSession {
        id: id.parse().map_err(|_| corrupt("id"))?,
        app_id: app.parse().map_err(|_| corrupt("app_id"))?,
        user_id: UserId(row.try_get("user_id")?),
        title: row.try_get("title")?,
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
        updated_at: Timestamp::from_micros(row.try_get("updated_at")?),
    })
}

fn message_from_row(row: &AnyRow) -> Result<ChatMessage> {
    let id: String = row.try_get("id")?;
    let session: String = row.try_get("session_id")?;
    let run: Option<String> = row.try_get("run_id")?;
    let role: String = row.try_get("role")?;
    let status: String = row.try_get("status")?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("chat message {id}: {what}"));
    Ok(ChatMessage {
        session_id: session.parse().map_err(|_| corrupt("session_id"))?,
        run_id: run
            .map(|r| r.parse())
            .transpose()
            .map_err(|_| corrupt("run_id"))?,
        role: match role.as_str() {
            "user" => ChatRole::User,
            "assistant" => ChatRole::Assistant,
            _ => return Err(corrupt("role")),
        },
        status: match status.as_str() {
            "complete" => MessageStatus::Complete,
            "partial" => MessageStatus::Partial,
            _ => return Err(corrupt("status")),
        },
        content: row.try_get("content")?,
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
        id,
    })
}

pub(crate) async fn insert_message(
    tx: &mut Transaction<'static, Any>,
    session: ChatSessionId,
    run: Option<RunId>,
    role: ChatRole,
    content: &str,
    status: MessageStatus,
    now: Timestamp,
) -> Result<ChatMessage> {
    let id = uuid::Uuid::new_v4().to_string();
    let role_text = match role {
        ChatRole::User => "user",
        ChatRole::Assistant => "assistant",
    };
    let status_text = match status {
        MessageStatus::Complete => "complete",
        MessageStatus::Partial => "partial",
    };
    sqlx::query(
        "INSERT INTO published_app_coding_chat_messages \
         (id, session_id, run_id, role, content, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(session.to_string())
    .bind(run.map(|r| r.to_string()))
    .bind(role_text)
    .bind(content)
    .bind(status_text)
    .bind(now.as_micros())
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE published_app_coding_chat_sessions SET updated_at = $2 WHERE id = $1")
        .bind(session.to_string())
        .bind(now.as_micros())
        .execute(&mut **tx)
        .await?;
    Ok(ChatMessage {
        id,
        session_id: session,
        run_id: run,
        role,
        content: content.to_owned(),
        status,
        created_at: now,
    })
}

pub(crate) async fn add_message(
    pool: &AnyPool,
    session: ChatSessionId,
    run: Option<RunId>,
    role: ChatRole,
    content: &str,
    status: MessageStatus,
) -> Result<ChatMessage> {
    let mut tx = crate::db::begin_write(pool).await?;
    let message = insert_message(
        &mut tx,
        session,
        run,
        role,
        content,
        status,
        Timestamp::now(),
    )
    .await?;
    tx.commit().await?;
    Ok(message)
}

pub(crate) async fn session(pool: &AnyPool, id: ChatSessionId) -> Result<ChatSession> {
    let row = sqlx::query(
        "SELECT id, app_id, user_id, title, created_at, updated_at \
         FROM published_app_coding_chat_sessions WHERE id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?
    .ok_or(StoreError::NotFound("chat session"))?;
    session_from_row(&row)
}

pub(crate) async fn sessions(
    pool: &AnyPool,
    app: AppId,
    user: &UserId,
) -> Result<Vec<ChatSession>> {
    let rows = sqlx::query(
        "SELECT id, app_id, user_id, title, created_at, updated_at \
         FROM published_app_coding_chat_sessions WHERE app_id = $1 AND user_id = $2 \
         ORDER BY updated_at DESC, id DESC",
    )
    .bind(app.to_string())
    .bind(&user.0)
    .fetch_all(pool)
    .await?;
    rows.iter().map(session_from_row).collect()
}

pub(crate) async fn messages(pool: &AnyPool, session: ChatSessionId) -> Result<Vec<ChatMessage>> {
    let rows = sqlx::query(
        "SELECT id, session_id, run_id, role, content, status, created_at \
         FROM published_app_coding_chat_messages WHERE session_id = $1 ORDER BY created_at, id",
    )
    .bind(session.to_string())
    .fetch_all(pool)
    .await?;
    rows.iter().map(message_from_row).collect()
}
