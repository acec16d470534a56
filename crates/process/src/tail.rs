//! A byte buffer that keeps only the last N bytes written to it, so a chatty command costs
//! bounded memory and the model sees how it ended.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::Child;
use tokio::task::JoinHandle;

/// The tail of a stream, with a count of what was dropped.
#[derive(Debug)]
pub struct TailBuffer {
    max: usize,
    bytes: Vec<u8>,
    dropped: u64,
}

impl TailBuffer {
    /// An empty buffer keeping at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            bytes: Vec::new(),
            dropped: 0,
        }
    }

    /// Appends `chunk`, dropping the oldest bytes beyond the bound.
    pub fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= self.max {
            self.dropped += (self.bytes.len() + chunk.len() - self.max) as u64;
            self.bytes.clear();
            self.bytes
                .extend_from_slice(&chunk[chunk.len() - self.max..]);
            return;
        }
        self.bytes.extend_from_slice(chunk);
        // Compact only when well past the bound, so pushes stay amortised O(1).
        if self.bytes.len() > self.max.saturating_mul(2).max(8192) {
            let excess = self.bytes.len() - self.max;
            self.bytes.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    /// The kept text (lossy UTF-8), prefixed with a mark when anything was dropped.
    pub fn finish(mut self) -> String {
        if self.bytes.len() > self.max {
            let excess = self.bytes.len() - self.max;
            self.bytes.drain(..excess);
            self.dropped += excess as u64;
        }
        let mut start = 0;
        if self.dropped > 0 {
            // Do not start in the middle of a UTF-8 sequence.
            while start < self.bytes.len() && start < 4 && (self.bytes[start] & 0xC0) == 0x80 {
                start += 1;
            }
        }
        let text = String::from_utf8_lossy(&self.bytes[start..]);
        let dropped = self.dropped + start as u64;
        if dropped == 0 {
            text.into_owned()
        } else {
            format!("[… {dropped} earlier bytes of output truncated …]\n{text}")
        }
    }
}

/// How long to wait for the pipes to close after the command's group was killed (a
/// process that left the group may still hold them).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// The tail of a child's stdout and stderr together, read on tasks of their own.
pub(crate) struct Capture {
    tail: Arc<Mutex<TailBuffer>>,
    readers: Vec<JoinHandle<()>>,
}

impl Capture {
    /// Starts reading the child's piped stdout and stderr, keeping at most `max` bytes.
    pub(crate) fn start(child: &mut Child, max: usize) -> Self {
        let tail = Arc::new(Mutex::new(TailBuffer::new(max)));
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(spawn_reader(stdout, tail.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(spawn_reader(stderr, tail.clone()));
        }
        Self { tail, readers }
    }

    /// Waits (a bounded while) for the pipes to close, then returns the kept text.
    pub(crate) async fn finish(self) -> String {
        for reader in self.readers {
            let abort = reader.abort_handle();
            if tokio::time::timeout(DRAIN_GRACE, reader).await.is_err() {
                abort.abort();
            }
        }
        // A reader cut off above may still hold a clone, so take the buffer out in place.
        self.tail
            .lock()
            .map(|mut b| std::mem::replace(&mut *b, TailBuffer::new(0)).finish())
            .unwrap_or_default()
    }
}

/// Reads `stream` to its end into `tail`, on its own task.
fn spawn_reader<R>(mut stream: R, tail: Arc<Mutex<TailBuffer>>) -> JoinHandle<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut chunk = vec![0u8; 8192];
        loop {
            match tokio::io::AsyncReadExt::read(&mut stream, &mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Ok(mut tail) = tail.lock() {
                        tail.push(&chunk[..n]);
                    }
                }
            }
        }
    })
}
