//! `draftsmith-mockmodel`: a scripted language-model server for tests, demos and benchmarks.
//!
//! It is a real HTTP server speaking the OpenAI-compatible Chat Completions protocol
//! (`POST /v1/chat/completions`, SSE `chat.completion.chunk` events ending in `data: [DONE]`)
//! and Anthropic's Messages protocol (`POST /v1/messages`, `message_start` … `message_stop`),
//! and it plays a [`Script`] of turns. Turn selection is stateless: a request holding `i`
//! assistant messages gets turn `i`, so any number of concurrent conversations can share one
//! server. Every request is recorded, and every tool result must answer an earlier tool
//! call, or the request is refused with HTTP 400 and counted in [`MockModel::violations`];
//! so is a request that does not fit the script's `context_window`.
//!
//! The script format is documented in `docs/mock-model.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use draftsmith_mockmodel::{MockModel, Script};
//! let script = Script::from_json(r#"{"scenarios": [{"name": "hi", "turns": [
//!     {"steps": [{"text": "Hello!", "chunk": 2}]}
//! ]}]}"#)?;
//! let model = MockModel::start(script).await?;
//! let base_url = model.base_url(); // "http://127.0.0.1:PORT/v1"
//! # let _ = base_url;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod anthropic;
mod cache;
mod openai;
mod plan;
mod recorded;
mod request;
mod rules;
mod script;
mod server;
mod window;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use recorded::{RecordedRequest, ReportedUsage};
pub use script::{
    Attempt, ErrorReply, Finish, Match, Reply, Scenario, Script, ScriptError, Step, ToolCall, Turn,
    Usage,
};

use server::Shared;

/// A running mock model server bound to 127.0.0.1; dropping it stops the server.
#[derive(Debug)]
pub struct MockModel {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl MockModel {
    /// Binds `127.0.0.1:0` and serves `script` in the background.
    pub async fn start(script: Script) -> std::io::Result<MockModel> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(script));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, Arc::clone(&shared), async move {
            let _ = stopped.await;
        }));
        Ok(MockModel {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The OpenAI-style base URL, `http://127.0.0.1:PORT/v1`, to configure a provider with.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The socket address, for clients that want host and port apart.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every model request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// When each of [`Self::requests`] arrived, in the same order, without copying the
    /// requests (a benchmark reads them around each timed run).
    pub fn arrivals(&self) -> Vec<std::time::Instant> {
        self.shared.arrivals()
    }

    /// Tool-result invariant and context-window violations seen so far; a passing test
    /// expects none.
    pub fn violations(&self) -> Vec<String> {
        self.shared.violations()
    }

    /// Stops the server and waits until it has closed every connection.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for MockModel {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Serves `script` on `listener` until `shutdown` resolves; the CLI's `mock-model` command.
pub async fn serve(
    listener: tokio::net::TcpListener,
    script: Script,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::run(listener, Arc::new(Shared::new(script)), shutdown).await
}
