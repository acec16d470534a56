//! The last lines a dev server printed, kept for the UI (a crash shows why).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Most lines kept.
const MAX_LINES: usize = 40;
/// Longest line kept (the rest is cut).
const MAX_LINE: usize = 400;

/// A bounded tail of lines; clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct LineTail(Arc<Mutex<VecDeque<String>>>);

impl LineTail {
    /// Appends one line, dropping the oldest beyond the bound.
    pub(crate) fn push(&self, line: &str) {
        let mut line = strip_ansi(line);
        if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        if let Ok(mut lines) = self.0.lock() {
            if lines.len() == MAX_LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    }

    /// The lines, oldest first.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Reads `from` line by line into the tail until it closes; the handle ends with it.
    pub(crate) fn follow(
        &self,
        from: impl AsyncRead + Unpin + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let tail = self.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(from).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tail.push(&line);
            }
        })
    }
}

/// `text` without terminal colour sequences (`ESC [ … letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_without_colours() {
        let tail = LineTail::default();
        for i in 0..(MAX_LINES + 5) {
            tail.push(&format!("\u{1b}[32mline {i}\u{1b}[0m"));
        }
        let lines = tail.lines();
        assert_eq!(lines.len(), MAX_LINES);
        assert_eq!(lines[0], "line 5");
        assert_eq!(lines[MAX_LINES - 1], format!("line {}", MAX_LINES + 4));
    }
}
