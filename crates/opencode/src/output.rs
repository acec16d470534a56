//! What an `opencode serve` prints: its last lines, kept to explain a failed start or an
//! exit, and the listening URL once it appears.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Child;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The line `opencode serve` prints once it accepts connections.
const LISTENING: &str = "opencode server listening on ";
/// Lines of output kept.
const TAIL_LINES: usize = 40;

/// The last lines of a server's stdout and stderr together; clones share them.
#[derive(Debug, Clone, Default)]
pub(crate) struct OutputTail(Arc<Mutex<VecDeque<String>>>);

impl OutputTail {
    /// Reads the child's stdout (whose listening line goes to `listening`) and stderr into
    /// the tail, on tasks of their own.
    pub(crate) fn start(
        &self,
        child: &mut Child,
        listening: oneshot::Sender<String>,
    ) -> Vec<JoinHandle<()>> {
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(self.clone().read(stdout, Some(listening))));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(self.clone().read(stderr, None)));
        }
        readers
    }

    /// The kept lines, joined with ` | `.
    pub(crate) fn text(&self) -> String {
        let lines = self.0.lock().map(|l| l.clone()).unwrap_or_default();
        lines.into_iter().collect::<Vec<_>>().join(" | ")
    }

    /// Forwards output lines into the tail, and the listening URL once it appears.
    async fn read(
        self,
        stream: impl AsyncRead + Unpin,
        mut listening: Option<oneshot::Sender<String>>,
    ) {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.split(LISTENING).nth(1)
                && let Some(tx) = listening.take()
            {
                let _ = tx.send(url.trim().trim_end_matches('/').to_owned());
            }
            if let Ok(mut tail) = self.0.lock() {
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.chars().take(500).collect());
            }
        }
    }
}
