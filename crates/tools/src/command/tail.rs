//! A byte buffer that keeps only the last N bytes written to it, so a chatty command costs
//! bounded memory and the model sees how it ended.

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

/// Reads `stream` to its end into `tail`, on its own task.
pub fn spawn_tail_reader<R>(
    mut stream: R,
    tail: std::sync::Arc<std::sync::Mutex<TailBuffer>>,
) -> tokio::task::JoinHandle<()>
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail() {
        let mut tail = TailBuffer::new(10);
        for i in 0..10_000 {
            tail.push(format!("{i}\n").as_bytes());
        }
        let text = tail.finish();
        assert!(text.ends_with("9998\n9999\n"), "{text}");
        assert!(text.starts_with("[… "), "{text}");
        let mut small = TailBuffer::new(10);
        small.push(b"hello");
        assert_eq!(small.finish(), "hello");
        let mut big = TailBuffer::new(4);
        big.push(b"abcdefgh");
        assert!(big.finish().ends_with("\nefgh"));
    }
}
