//! The connection's byte stream as hyper sees it, with two duties hyper has no hook for:
//! an inactivity timer (no byte moved either way for `idle`: the connection fails), and
//! the envelope on the bare answers hyper writes itself when it cannot parse a request
//! head (400 for a bad request line or header, 414 for a long target, 431 for too many
//! or too large headers: a head with `content-length: 0` and nothing else).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use draftsmith_core::{ErrorBody, ErrorCode};

use super::sealed::{self, SendFile};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A stream with an inactivity timer whose hyper-written parse errors get the envelope.
pub struct EdgeIo<T> {
    inner: T,
    idle: Duration,
    /// Handlers of this connection still working on an answer: while one is, the
    /// connection is not idle (a publish may build for a minute before it answers).
    busy: Arc<AtomicUsize>,
    /// When a byte last moved. Progress only notes the time; the timer is moved up to it
    /// when it fires, so a busy connection does not re-arm a timer per read and write.
    last: Instant,
    timer: Pin<Box<Sleep>>,
    /// The envelope response replacing hyper's bare one, and how much of it is sent.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<T> EdgeIo<T> {
    /// Wraps `inner`; `idle` without progress either way, and no handler busy on
    /// `busy`, ends the connection.
    pub fn new(inner: T, idle: Duration, busy: Arc<AtomicUsize>) -> Self {
        Self {
            inner,
            idle,
            busy,
            last: Instant::now(),
            timer: Box::pin(tokio::time::sleep(idle)),
            replacement: None,
        }
    }

    fn touch(&mut self) {
        self.last = Instant::now();
    }

    /// Pending I/O: fails once the timer has run out with no handler at work. (A busy
    /// handler's answer is written when it is done, which starts the timer again.)
    fn idle_or_pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        if self.busy.load(Ordering::Acquire) > 0 {
            self.touch();
            return Poll::Pending;
        }
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let deadline = self.last + self.idle;
            if deadline <= Instant::now() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for too long",
                )));
            }
            // Bytes moved since the timer was set: it runs on from the last of them.
            self.timer.as_mut().reset(deadline);
        }
    }
}

impl<T: AsyncWrite + Unpin> EdgeIo<T> {
    /// A write's result as hyper sees it: progress restarts the idle timer, a pending
    /// write counts toward it.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.touch();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.idle_or_pending(cx),
        }
    }

    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, sent)) = self.replacement.as_mut() {
            if *sent == bytes.len() {
                return Poll::Ready(Ok(()));
            }
            let n = match Pin::new(&mut self.inner).poll_write(cx, &bytes[*sent..]) {
                Poll::Ready(n) => n?,
                Poll::Pending => return self.idle_or_pending(cx),
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *sent += n;
            self.touch();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for EdgeIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.idle_or_pending(cx),
        }
    }
}

impl<T: AsyncWrite + SendFile + Unpin> AsyncWrite for EdgeIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacement.is_some() {
            // The connection is ending with the envelope; hyper writes nothing after it.
            return Poll::Ready(Ok(buf.len()));
        }
        if let Some(status) = bare_error_status(buf) {
            this.replacement = Some((envelope_response(status), 0));
            return Poll::Ready(Ok(buf.len()));
        }
        let written = match sealed::locate(buf) {
            Some((file, offset)) => this.inner.poll_send_file(cx, file, offset, buf.len()),
            None => Pin::new(&mut this.inner).poll_write(cx, buf),
        };
        this.wrote(cx, written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // hyper's bare error answers are one small buffer; a head and a body written
        // together (every real response) go straight through, without a copy.
        let mut written = bufs.iter().filter(|b| !b.is_empty());
        if let (first, None) = (written.next(), written.next()) {
            return self.poll_write(cx, first.map_or(&[][..], |b| &b[..]));
        }
        let this = self.get_mut();
        if this.replacement.is_some() {
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        // A slice of a sealed file goes out from the file; the slices before it first,
        // marked as followed by more.
        let first = bufs.iter().position(|b| !b.is_empty());
        let file = bufs
            .iter()
            .position(|b| !b.is_empty() && sealed::locate(b).is_some());
        let written = match file {
            Some(at) if Some(at) == first => return Pin::new(this).poll_write(cx, &bufs[at]),
            Some(at) => this.inner.poll_write_before_file(cx, &bufs[..at]),
            None => Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
        };
        this.wrote(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.idle_or_pending(cx),
            done => done,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The status of hyper's own answer to an unparsable head: exactly a status line of 400,
/// 414 or 431 with `content-length: 0` and at most `date` and `connection` besides. The
/// router never sends that (its errors all carry a JSON body).
fn bare_error_status(buf: &[u8]) -> Option<u16> {
    // Cheap refusals first: this runs on every write, bodies included.
    if buf.len() > 512 || !buf.starts_with(b"HTTP/1.1 4") {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    if end + 4 != buf.len() {
        return None;
    }
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()?
        .strip_prefix("HTTP/1.1 ")?
        .get(..3)?
        .parse()
        .ok()?;
    if !matches!(status, 400 | 414 | 431) {
        return None;
    }
    let mut saw_length = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" if value.trim() == "0" => saw_length = true,
            "date" | "connection" => {}
            _ => return None,
        }
    }
    saw_length.then_some(status)
}

/// A complete HTTP/1.1 response carrying the envelope, ending the connection.
pub fn envelope_response(status: u16) -> Vec<u8> {
    let (code, reason, message) = match status {
        414 => (
            ErrorCode::UriTooLong,
            "URI Too Long",
            "the request target is too long",
        ),
        431 => (
            ErrorCode::HeadersTooLarge,
            "Request Header Fields Too Large",
            "the request has too many header fields or too large ones",
        ),
        503 => (
            ErrorCode::ServiceUnavailable,
            "Service Unavailable",
            "the server is at its connection limit; retry shortly",
        ),
        _ => (
            ErrorCode::ValidationFailed,
            "Bad Request",
            "malformed request: the request line or a header field is not valid HTTP/1.1",
        ),
    };
    let body = serde_json::to_vec(&ErrorBody::new(code, message)).unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    if status == 503 {
        out.push_str("retry-after: 1\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bare_errors_are_replaced() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 03:00:00 GMT\r\n\r\n";
        assert_eq!(bare_error_status(bare), Some(431));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(bare_error_status(ours), None);
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nx";
        assert_eq!(bare_error_status(with_body), None);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(bare_error_status(ok), None);
    }
}
