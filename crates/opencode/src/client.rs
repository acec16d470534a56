//! A typed client for the parts of OpenCode's HTTP API the engine uses, with HTTP Basic
//! auth (user `opencode`) when the server has a password.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::wire::{MessageWithParts, PermissionRequest, Session, SessionStatus};

/// Longest wait for an ordinary request (the synchronous prompt and the event stream have
/// none).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for one health probe.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer (connection refused, timeout, broken body).
    #[error("opencode request {what} failed: {source}")]
    Http {
        /// Which call.
        what: &'static str,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// An answer that is not a success.
    #[error("opencode request {what} answered {status}: {body}")]
    Status {
        /// Which call.
        what: &'static str,
        /// The status code.
        status: u16,
        /// The (shortened) body.
        body: String,
    },
}

/// The prompt body (`POST /session/{id}/message`).
#[derive(Debug, Clone, Serialize)]
pub struct PromptBody {
    /// Which model answers.
    pub model: ModelRef,
    /// Extra system instructions, appended to OpenCode's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The user's message.
    pub parts: Vec<PartInput>,
    /// Only record the message: no answer, no model call.
    #[serde(rename = "noReply", skip_serializing_if = "std::ops::Not::not")]
    pub no_reply: bool,
}

/// `{providerID, modelID}`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRef {
    /// The provider id in OpenCode's configuration.
    #[serde(rename = "providerID")]
    pub provider_id: String,
    /// The model id.
    #[serde(rename = "modelID")]
    pub model_id: String,
}

impl ModelRef {
    /// The reference to a run's pinned model (its provider id is the OpenCode provider).
    pub fn of(model: &draftsmith_engine::ResolvedModel) -> Self {
        Self {
            provider_id: model.spec.id.clone(),
            model_id: model.name.clone(),
        }
    }
}

/// A part of the prompt: OpenCode's `TextPartInput` or `FilePartInput`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PartInput {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A file, here always inline as a `data:` URL.
    File {
        /// Its media type.
        mime: String,
        /// Its name.
        filename: String,
        /// `data:<mime>;base64,<bytes>`.
        url: String,
    },
}

/// A client bound to one server (and, for a shared external server, one directory).
#[derive(Debug, Clone)]
pub struct OpencodeClient {
    base_url: String,
    password: Option<String>,
    directory: Option<String>,
    http: reqwest::Client,
}

impl OpencodeClient {
    /// A client for `base_url` (`http://127.0.0.1:P`).
    pub fn new(base_url: String, password: Option<String>) -> Self {
        Self {
            base_url,
            password,
            directory: None,
            http: reqwest::Client::new(),
        }
    }

    /// A client for a server reached through the Unix socket `socket` (a forwarder to its
    /// port inside its sandbox); `base_url` only names the host and port it listens on.
    pub fn over_socket(
        base_url: String,
        password: Option<String>,
        socket: &std::path::Path,
    ) -> Self {
        let http = reqwest::Client::builder()
            .unix_socket(socket)
            .build()
            .unwrap_or_default();
        Self {
            base_url,
            password,
            directory: None,
            http,
        }
    }

    /// The same client, scoping every call to `directory` (OpenCode's `?directory=`), for a
    /// server that serves several workspaces.
    pub fn scoped(mut self, directory: String) -> Self {
        self.directory = Some(directory);
        self
    }

    /// The server's root URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut builder = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        if let Some(password) = &self.password {
            builder = builder.basic_auth("opencode", Some(password));
        }
        if let Some(directory) = &self.directory {
            builder = builder.query(&[("directory", directory)]);
        }
        builder
    }

    async fn send(
        &self,
        what: &'static str,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let response = builder
            .send()
            .await
            .map_err(|source| ClientError::Http { what, source })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Err(ClientError::Status {
            what,
            status,
            body: body.chars().take(500).collect(),
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        builder: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        self.send(what, builder.timeout(REQUEST_TIMEOUT))
            .await?
            .json()
            .await
            .map_err(|source| ClientError::Http { what, source })
    }

    /// `GET /global/health` answered healthy.
    pub async fn healthy(&self) -> bool {
        let builder = self
            .request(reqwest::Method::GET, "/global/health")
            .timeout(HEALTH_TIMEOUT);
        match self.send("health", builder).await {
            Ok(response) => response
                .json::<Value>()
                .await
                .is_ok_and(|v| v.get("healthy") == Some(&Value::Bool(true))),
            Err(_) => false,
        }
    }

    /// `POST /session` with a title (a titled session spares the model a title request).
    pub async fn create_session(&self, title: &str) -> Result<Session, ClientError> {
        let builder = self
            .request(reqwest::Method::POST, "/session")
            .json(&json!({ "title": title }));
        self.json("create session", builder).await
    }

    /// `POST /session/{id}/message`: the synchronous prompt, answering when the work ends
    /// with the last message it made (`None` when the answer is not one).
    pub async fn prompt_sync(
        &self,
        session: &str,
        body: &PromptBody,
    ) -> Result<Option<MessageWithParts>, ClientError> {
        let builder = self
            .request(
                reqwest::Method::POST,
                &format!("/session/{session}/message"),
            )
            .json(body);
        let answer = self
            .send("message", builder)
            .await?
            .bytes()
            .await
            .map_err(|source| ClientError::Http {
                what: "message",
                source,
            })?;
        Ok(serde_json::from_slice(&answer).ok())
    }

    /// `POST /session/{id}/abort`.
    pub async fn abort(&self, session: &str) -> Result<(), ClientError> {
        let builder = self
            .request(reqwest::Method::POST, &format!("/session/{session}/abort"))
            .timeout(REQUEST_TIMEOUT);
        self.send("abort", builder).await.map(|_| ())
    }

    /// `GET /session/{id}/message`: every message with its parts, in order.
    pub async fn messages(&self, session: &str) -> Result<Vec<MessageWithParts>, ClientError> {
        let builder = self.request(reqwest::Method::GET, &format!("/session/{session}/message"));
        self.json("messages", builder).await
    }

    /// `GET /find/file?query=`: the workspace's files matching `query` (the first search
    /// starts OpenCode's file watcher and search for the workspace).
    pub async fn find_files(&self, query: &str) -> Result<Vec<String>, ClientError> {
        let builder = self
            .request(reqwest::Method::GET, "/find/file")
            .query(&[("query", query)]);
        self.json("find file", builder).await
    }

    /// `GET /session/status`: the sessions that are not idle.
    pub async fn statuses(&self) -> Result<HashMap<String, SessionStatus>, ClientError> {
        let builder = self.request(reqwest::Method::GET, "/session/status");
        self.json("session status", builder).await
    }

    /// `GET /permission`: pending permission requests.
    pub async fn permissions(&self) -> Result<Vec<PermissionRequest>, ClientError> {
        let builder = self.request(reqwest::Method::GET, "/permission");
        self.json("permissions", builder).await
    }

    /// `POST /permission/{id}/reply` with `once`, `always` or `reject`.
    pub async fn reply_permission(
        &self,
        id: &str,
        reply: &str,
        message: &str,
    ) -> Result<(), ClientError> {
        let builder = self
            .request(reqwest::Method::POST, &format!("/permission/{id}/reply"))
            .timeout(REQUEST_TIMEOUT)
            .json(&json!({ "reply": reply, "message": message }));
        self.send("permission reply", builder).await.map(|_| ())
    }

    /// `GET /event`: the raw SSE response of the server's instance for its directory (the
    /// workspace). `/global/event` would carry every event twice (its own form and a
    /// `sync` copy), which OpenCode serializes on its only thread while the run works.
    pub async fn events(&self) -> Result<reqwest::Response, ClientError> {
        let builder = self
            .request(reqwest::Method::GET, "/event")
            .header("accept", "text/event-stream");
        self.send("events", builder).await
    }
}
