//! The controller's internal HTTP API. Each route maps one [`SandboxController`] method;
//! failures answer the SPEC §2 envelope through [`Failure`]. Commands run in tasks of their
//! own, tied to a token that an explicit cancel or a dropped connection fires.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use draftsmith_core::BlobHash;
use serde::de::DeserializeOwned;

use super::PREFIX;
use super::auth::{digest, require_secret};
use super::execs::ExecRegistry;
use super::failure::Failure;
use super::wire::{
    CancelBody, ChangesBody, CreateBody, CreatedBody, Empty, ExecBody, InfoBody, LinkedBody,
    MissingBody, OutputBody, OutputFiles, PlanBody, ReapedBody, RefreshBody, SeedBody,
    SnapshotBody, ToolBody, TouchBody, WireOutcome, WireOutput, decode, encode,
};
use crate::controller::{BlobSource, Refreshed, SandboxController};
use crate::error::SandboxError;
use crate::id::SandboxId;

/// Largest request body (a refresh carries the files it writes).
const MAX_BODY: usize = 256 * 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct ServerState {
    controller: Arc<dyn SandboxController>,
    secret: [u8; 32],
    execs: ExecRegistry,
}

/// Serves `controller` at `/internal/sandbox-controller/…`, every route requiring
/// `Authorization: Bearer <secret>`.
pub fn controller_router(controller: Arc<dyn SandboxController>, secret: String) -> Router {
    let state = ServerState {
        controller,
        secret: digest(&secret),
        execs: ExecRegistry::default(),
    };
    let session = |op: &str| format!("{PREFIX}/sessions/{{sandbox_id}}/{op}");
    Router::new()
        .route(&format!("{PREFIX}/info"), get(info))
        .route(&format!("{PREFIX}/reap"), post(reap))
        .route(&session("create"), post(create))
        .route(&session("plan"), post(plan))
        .route(&session("refresh"), post(refresh))
        .route(&session("dependencies"), post(dependencies))
        .route(&session("tool"), post(tool))
        .route(&session("exec"), post(exec))
        .route(&session("cancel"), post(cancel))
        .route(&session("snapshot"), post(snapshot))
        .route(&session("seed"), post(seed))
        .route(&session("output"), post(output))
        .route(&session("touch"), post(touch))
        .route(&session("stop"), post(stop))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.secret,
            require_secret,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

type Answer<T> = Result<Json<T>, Failure>;

/// A JSON body whose rejection is answered in the envelope.
struct Body<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Failure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state)
            .await
            .map_err(|e: JsonRejection| SandboxError::Invalid(e.body_text()))?;
        Ok(Self(value))
    }
}

fn sandbox(raw: &str) -> Result<SandboxId, Failure> {
    SandboxId::parse(raw).map_err(Failure)
}

async fn not_found() -> Failure {
    Failure(SandboxError::NotFound("no such route".into()))
}

async fn info(State(s): State<ServerState>) -> Json<InfoBody> {
    Json(InfoBody {
        isolation: s.controller.isolation(),
        limits: s.controller.limits(),
    })
}

async fn reap(State(s): State<ServerState>) -> Answer<ReapedBody> {
    let reaped = s.controller.reap_expired().await?;
    Ok(Json(ReapedBody { reaped }))
}

async fn create(
    State(s): State<ServerState>,
    Path(id): Path<String>,
    Body(body): Body<CreateBody>,
) -> Answer<CreatedBody> {
    let id = sandbox(&id)?;
    let ttl = Duration::from_millis(body.ttl_ms);
    let created = s.controller.create(&id, &body.template, ttl).await?;
    Ok(Json(CreatedBody {
        reused: created.reused,
        isolation: s.controller.isolation(),
        limits: s.controller.limits(),
    }))
}

async fn plan(
    State(s): State<ServerState>,
    Path(id): Path<String>,
    Body(body): Body<PlanBody>,
) -> Answer<MissingBody> {
    let missing = s
        .controller
        .missing_blobs(&sandbox(&id)?, &body.files)
        .await?;
    Ok(Json(MissingBody { missing }))
}

/// The blobs a client uploaded with its refresh.
struct Uploaded(HashMap<BlobHash, Vec<u8>>);

#[async_trait::async_trait]
impl BlobSource for Uploaded {
    async fn blob(&self, hash: &BlobHash) -> Result<Vec<u8>, SandboxError> {
        self.0.get(hash).cloned().ok_or_else(|| SandboxError::Blob {
            hash: hash.clone(),
            message: "not uploaded with the refresh".into(),
        })
    }
}

async fn refresh(
    State(s): State<ServerState>,
    Path(id): Path<String>,
    Body(body): Body<RefreshBody>,
) -> Answer<Refreshed> {
    let id = sandbox(&id)?;
    let mut blobs = HashMap::with_capacity(body.blobs.len());
    for (hash, content) in body.blobs {
        let hash = BlobHash::parse(&hash)
            .ok_or_else(|| SandboxError::Invalid(format!("{hash:?} is not a sha256")))?;
        blobs.insert(hash, decode(&content)?);
    }
    let done = s
        .controller
        .refresh(&id, &body.files, &Uploaded(blobs))
        .await?;
    Ok(Json(done))
}

async fn dependencies(State(s): State<ServerState>, Path(id): Path<String>) -> Answer<LinkedBody> {
    let linked = s.controller.prepare_dependencies(&sandbox(&id)?).await?;
    Ok(Json(LinkedBody { linked }))
}

async fn tool(
    State(s): State<ServerState>,
    Path(id): Path<String>,
    Body(body): Body<ToolBody>,
) -> Answer<WireOutcome> {
    let id = sandbox(&id)?;
    let (cancel, _guard) = s.execs.start(&body.exec_id);
    let controller = s.controller.clone();
    let task = tokio::spawn(async move {
        controller
            .run_tool(&id, &body.function_name, &body.arguments, cancel)
            .await
    });
    let outcome = joined(task.await)??;
    Ok(Json(outcome.into()))
}

async fn exec(
    State(s): State<ServerState>,
    Path(id): Path<String>,
    Body(body): Body<ExecBody>,
) -> Answer<WireOutput> {
    let id = sandbox(&id)?;
    let (cancel, _guard) = s.execs.start(&body.exec_id);
    let controller = s.controller.clone();
    let task = tokio::spawn(async move { controller.exec(&id, body.request, cancel).await });
    let output = joined(task.await)??;
    Ok(Json(output.into()))
}

/// A command's task ended without an answer (it panicked).
fn joined<T>(r: Result<T, tokio::task::JoinError>) -> Result<T, Failure> {
    r.map_err(|e| {
        Failure(SandboxError::Process(format!(
            "the command's task failed: {e}"
        )))
    })
}

async fn cancel(
    State(s): State<ServerState>,
    Path(id): Path<String>,
    Body(body): Body<CancelBody>,
) -> Answer<Empty> {
    sandbox(&id)?;
    s.execs.cancel(&body.exec_id);
    Ok(Json(Empty {}))
}

async fn snapshot(
    State(s): State<ServerState>,
    Path(id): Path<String>,
    Body(body): Body<SnapshotBody>,
) -> Answer<ChangesBody> {
    let changes = s.controller.snapshot(&sandbox(&id)?, &body.base).await?;
    Ok(Json(ChangesBody {
        changes: changes.into_iter().map(Into::into).collect(),
    }))
}

async fn seed(
    State(s): State<ServerState>,
    Path(id): Path<String>,
    Body(body): Body<SeedBody>,
) -> Answer<Empty> {
    let content = decode(&body.content)?;
    s.controller
        .seed_file(&sandbox(&id)?, &body.path, &content)
        .await?;
    Ok(Json(Empty {}))
}

async fn output(
    State(s): State<ServerState>,
    Path(id): Path<String>,
    Body(body): Body<OutputBody>,
) -> Answer<OutputFiles> {
    let files = s
        .controller
        .read_output(&sandbox(&id)?, &body.dir, body.max_bytes)
        .await?;
    Ok(Json(OutputFiles {
        files: files
            .into_iter()
            .map(|(path, content)| (path, encode(&content)))
            .collect(),
    }))
}

async fn touch(
    State(s): State<ServerState>,
    Path(id): Path<String>,
    Body(body): Body<TouchBody>,
) -> Answer<Empty> {
    let ttl = Duration::from_millis(body.ttl_ms);
    s.controller.touch(&sandbox(&id)?, ttl).await?;
    Ok(Json(Empty {}))
}

async fn stop(State(s): State<ServerState>, Path(id): Path<String>) -> Answer<Empty> {
    s.controller.stop(&sandbox(&id)?).await?;
    Ok(Json(Empty {}))
}
