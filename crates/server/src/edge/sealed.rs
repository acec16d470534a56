//! Large hot files sent without copying them. nginx sends a file with `sendfile(2)`: the
//! kernel hands the page cache's pages to the socket, where `write(2)` from memory copies
//! every byte once more (on this machine that copy alone costs a third of a 200 KB
//! asset's throughput). A large published file the cache keeps is therefore held in a
//! sealed memory file (`memfd`), mapped read-only for whoever reads it as bytes, and the
//! edge sends any part of such a mapping with `sendfile(2)` from the file instead.

use std::collections::BTreeMap;
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, RwLock};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Files smaller than this are copied: below it a second system call costs more than the
/// copy it saves.
pub const MIN_SEALED: usize = 16 * 1024;

/// The live mappings by start address: their length and their file.
static MAPPINGS: LazyLock<RwLock<BTreeMap<usize, (usize, RawFd)>>> =
    LazyLock::new(|| RwLock::new(BTreeMap::new()));
/// Bytes sent from sealed files since the process started.
static SENT: AtomicU64 = AtomicU64::new(0);

/// `content` in a sealed memory file, as bytes the edge sends without copying; plain bytes
/// when the kernel offers no sealed memory file.
pub fn seal(content: Vec<u8>) -> Bytes {
    if content.is_empty() {
        return Bytes::new();
    }
    match Sealed::new(&content) {
        Ok(sealed) => Bytes::from_owner(sealed),
        Err(err) => {
            tracing::debug!(error = %err, "cannot seal a file in memory; it is copied");
            Bytes::from(content)
        }
    }
}

/// Bytes sent from sealed files since the process started (the benchmark shows it).
pub fn sent_bytes() -> u64 {
    SENT.load(Ordering::Relaxed)
}

/// The sealed file `slice` lies in, and where in it `slice` starts.
pub fn locate(slice: &[u8]) -> Option<(RawFd, u64)> {
    let at = slice.as_ptr() as usize;
    let mappings = MAPPINGS.read().unwrap_or_else(|e| e.into_inner());
    let (&start, &(len, fd)) = mappings.range(..=at).next_back()?;
    (at + slice.len() <= start + len).then(|| (fd, (at - start) as u64))
}

/// A socket that sends a sealed file's bytes without copying them.
pub trait SendFile {
    /// Sends up to `len` bytes of `file` from `offset`, answering how many went.
    fn poll_send_file(
        &self,
        cx: &mut Context<'_>,
        file: RawFd,
        offset: u64,
        len: usize,
    ) -> Poll<io::Result<usize>>;

    /// Writes `bufs` telling the kernel more follows at once (the head before a sealed
    /// body goes out in the body's first segment, not in one of its own).
    fn poll_write_before_file(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;
}

impl SendFile for TcpStream {
    fn poll_send_file(
        &self,
        cx: &mut Context<'_>,
        file: RawFd,
        offset: u64,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        let socket = self.as_raw_fd();
        let sent = ready!(self.poll_nonblocking(cx, || {
            let mut offset = libc::off_t::try_from(offset).map_err(io::Error::other)?;
            // SAFETY: both descriptors are open (the socket is ours, the file belongs to
            // a mapping the caller's slice keeps alive) and `offset` is a valid pointer.
            let n = unsafe { libc::sendfile(socket, file, &mut offset, len) };
            usize::try_from(n).map_err(|_| io::Error::last_os_error())
        }))?;
        SENT.fetch_add(sent as u64, Ordering::Relaxed);
        Poll::Ready(Ok(sent))
    }

    fn poll_write_before_file(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let socket = self.as_raw_fd();
        self.poll_nonblocking(cx, || {
            // SAFETY: an all-zero `msghdr` is valid; `IoSlice` is ABI-compatible with
            // `iovec` on Unix, and `bufs` outlives the call.
            let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
            message.msg_iov = bufs.as_ptr().cast_mut().cast::<libc::iovec>();
            message.msg_iovlen = bufs.len().min(libc::UIO_MAXIOV as usize);
            let flags = libc::MSG_MORE | libc::MSG_NOSIGNAL;
            // SAFETY: the socket is open and `message` points at live buffers.
            let n = unsafe { libc::sendmsg(socket, &message, flags) };
            usize::try_from(n).map_err(|_| io::Error::last_os_error())
        })
    }
}

trait Nonblocking {
    /// Runs `io` once the socket is writable, again after each spurious readiness.
    fn poll_nonblocking(
        &self,
        cx: &mut Context<'_>,
        io: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>>;
}

impl Nonblocking for TcpStream {
    fn poll_nonblocking(
        &self,
        cx: &mut Context<'_>,
        mut io: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.poll_write_ready(cx))?;
            match self.try_io(Interest::WRITABLE, &mut io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                done => return Poll::Ready(done),
            }
        }
    }
}

/// A read-only shared mapping of a sealed memory file, registered while it lives.
struct Sealed {
    file: OwnedFd,
    start: *const u8,
    len: usize,
}

// SAFETY: the mapping is read-only and its file is sealed against writes, so its bytes
// never change; any thread may read them, and unmapping happens once, on drop.
unsafe impl Send for Sealed {}
// SAFETY: as above.
unsafe impl Sync for Sealed {}

impl Sealed {
    fn new(content: &[u8]) -> io::Result<Self> {
        let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
        // SAFETY: a valid C string and flags; the result is checked.
        let fd = unsafe { libc::memfd_create(c"draftsmith-published".as_ptr(), flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.write_all(content)?;
        let seals =
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
        // SAFETY: an open descriptor and a valid command.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let len = content.len();
        // SAFETY: a fresh read-only mapping of `len` bytes of an open file of that size.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let sealed = Self {
            file: OwnedFd::from(file),
            start: start.cast::<u8>().cast_const(),
            len,
        };
        MAPPINGS
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sealed.start as usize, (len, sealed.file.as_raw_fd()));
        Ok(sealed)
    }
}

impl AsRef<[u8]> for Sealed {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `start` maps `len` readable bytes until drop.
        unsafe { std::slice::from_raw_parts(self.start, self.len) }
    }
}

impl Drop for Sealed {
    fn drop(&mut self) {
        MAPPINGS
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(self.start as usize));
        // SAFETY: the mapping made in `new`, unmapped once; no slice of it outlives
        // `self` (every `Bytes` holding it is gone).
        unsafe { libc::munmap(self.start.cast_mut().cast(), self.len) };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn content(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn sealed_bytes_read_back_and_are_found_with_their_offset() {
        let original = content(MIN_SEALED * 2);
        let bytes = seal(original.clone());
        assert_eq!(&bytes[..], &original[..]);
        let (fd, offset) = locate(&bytes).unwrap();
        assert_eq!(offset, 0);
        let part = bytes.slice(1000..5000);
        assert_eq!(locate(&part), Some((fd, 1000)));
        // Past its end, or plain memory: not a sealed file.
        assert_eq!(locate(&original), None);
        let address = bytes.as_ptr() as usize;
        drop((bytes, part));
        assert!(!MAPPINGS.read().unwrap().contains_key(&address));
    }

    #[test]
    fn a_sealed_file_cannot_be_changed() {
        let bytes = seal(content(MIN_SEALED));
        let (fd, _) = locate(&bytes).unwrap();
        // SAFETY: an open descriptor; a one-byte buffer.
        let wrote = unsafe { libc::pwrite(fd, [0xffu8].as_ptr().cast(), 1, 0) };
        assert_eq!(wrote, -1);
        assert_eq!(bytes[0], 0);
    }

    /// Through the edge over real TCP: a head and a sealed body written together (as hyper
    /// writes a response), then a range of the body alone, arrive whole and in order, and
    /// the sealed bytes went out from the file.
    #[tokio::test]
    async fn the_edge_sends_a_head_then_a_sealed_body_from_the_file() {
        use std::sync::Arc;
        use std::time::Duration;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let mut socket = TcpStream::connect(address).await.unwrap();
            let mut received = Vec::new();
            socket.read_to_end(&mut received).await.unwrap();
            received
        });
        let (socket, _) = listener.accept().await.unwrap();
        let mut io = super::super::io::EdgeIo::new(socket, Duration::from_secs(10), Arc::default());
        let body = seal(content(MIN_SEALED * 3));
        let part = body.slice(777..MIN_SEALED * 2);
        let before = sent_bytes();

        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 196608\r\n\r\n";
        let mut slices = [IoSlice::new(head), IoSlice::new(&body)];
        let mut left = &mut slices[..];
        while !left.is_empty() {
            let n = io.write_vectored(left).await.unwrap();
            assert!(n > 0);
            IoSlice::advance_slices(&mut left, n);
        }
        io.write_all(&part).await.unwrap();
        io.shutdown().await.unwrap();
        drop(io);

        let received = reader.await.unwrap();
        let expected = [&head[..], &body, &part].concat();
        assert_eq!(received.len(), expected.len());
        assert!(received == expected, "the bytes differ");
        assert!(sent_bytes() - before >= (body.len() + part.len()) as u64);
    }
}
