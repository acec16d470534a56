//! Change notification between whole walks of a workspace: the walk puts an inotify watch
//! on every directory it enters, before reading it, so a later look at the workspace can
//! stat only the files named in events since. Anything beyond one file's own change (a
//! directory made, moved or removed, events lost to a full queue, a watch the kernel
//! dropped, a nameless event) asks for a whole walk, which sets the watches anew.
//!
//! Events are the kernel's, raised on the files whichever mount or process wrote them, so
//! the sandbox's processes cannot write around them by path. What inotify does not report
//! (a write through a shared mapping, or through a hard link in a directory nobody
//! watches) is still caught by the next whole walk: the end-of-run snapshot always walks.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::mpsc::Sender;

use draftsmith_core::path::is_blocked_dir;
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;

use super::walk::is_skipped_file;

/// What a watch reports: anything that changes which files a directory holds, or what
/// they hold.
const EVENTS: WatchFlags = WatchFlags::CREATE
    .union(WatchFlags::DELETE)
    .union(WatchFlags::MODIFY)
    .union(WatchFlags::ATTRIB)
    .union(WatchFlags::CLOSE_WRITE)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::DELETE_SELF)
    .union(WatchFlags::MOVE_SELF)
    .union(WatchFlags::ONLYDIR);

/// The most events one look reads: four times the kernel's default queue.
const MAX_EVENTS: usize = 65_536;

/// What changed since the last whole walk.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Noticed {
    /// Only these files (relative paths) may differ from what the walk found.
    Files(BTreeSet<String>),
    /// Only a whole walk can tell.
    Everything,
}

/// One inotify instance watching a workspace's walked directories.
#[derive(Debug)]
pub(crate) struct Watch {
    /// `None` only once dropped (see [`close_later`]).
    fd: Option<OwnedFd>,
    /// Each watched directory's relative path ("" for the root), by watch descriptor.
    dirs: HashMap<i32, String>,
    /// The descriptors the walk under way has set; the rest are removed at its end.
    walked: HashSet<i32>,
}

impl Watch {
    /// A new instance; `None` where the kernel refuses one (the per-user limit on
    /// instances reached), and the workspace is then walked whole each time.
    pub(crate) fn new() -> Option<Self> {
        match inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC) {
            Ok(fd) => Some(Self {
                fd: Some(fd),
                dirs: HashMap::new(),
                walked: HashSet::new(),
            }),
            Err(e) => {
                tracing::debug!(%e, "no change notification: every refresh walks");
                None
            }
        }
    }

    /// Starts a whole walk: what was noticed until now, the walk finds for itself.
    pub(crate) fn begin_walk(&mut self) {
        self.drain();
        self.walked.clear();
    }

    /// Watches the directory `dir` (held open by the walk) as `rel`; false when it
    /// cannot be watched (the per-user limit on watches reached).
    pub(crate) fn enter(&mut self, dir: BorrowedFd<'_>, rel: &str) -> bool {
        // Through the descriptor's own link, so the watch is on the directory the walk
        // holds, whatever has been renamed into its path since.
        let Some(fd) = &self.fd else { return false };
        let path = format!("/proc/self/fd/{}", dir.as_raw_fd());
        match inotify::add_watch(fd, path, EVENTS) {
            Ok(wd) => {
                self.dirs.insert(wd, rel.to_owned());
                self.walked.insert(wd);
                true
            }
            Err(e) => {
                tracing::debug!(%e, dir = rel, "cannot watch a directory: every refresh walks");
                false
            }
        }
    }

    /// Ends a whole walk: the watches of directories it did not meet are removed. False
    /// when the walk did not enter the root (it was missing), so nothing stands for it.
    pub(crate) fn end_walk(&mut self) -> bool {
        let walked = &self.walked;
        let stale: Vec<i32> = self
            .dirs
            .keys()
            .filter(|wd| !walked.contains(wd))
            .copied()
            .collect();
        for wd in stale {
            self.dirs.remove(&wd);
            // The kernel may have dropped it already (its directory deleted).
            if let Some(fd) = &self.fd {
                let _ = inotify::remove_watch(fd, wd);
            }
        }
        self.dirs.values().any(String::is_empty)
    }

    /// What the events queued since the walk began say changed; reading them consumes
    /// them. At most [`MAX_EVENTS`] are read: a sandbox writing without pause could
    /// otherwise keep the reader going as long as it likes.
    pub(crate) fn noticed(&mut self) -> Noticed {
        let Some(fd) = &self.fd else {
            return Noticed::Everything;
        };
        let mut buf = [MaybeUninit::<u8>::uninit(); 8192];
        let mut reader = inotify::Reader::new(fd, &mut buf);
        let mut files = BTreeSet::new();
        for _ in 0..MAX_EVENTS {
            let event = match reader.next() {
                Ok(event) => event,
                Err(Errno::AGAIN) => return Noticed::Files(files),
                Err(Errno::INTR) => continue,
                Err(e) => {
                    tracing::debug!(%e, "cannot read change notifications");
                    return Noticed::Everything;
                }
            };
            let flags = event.events();
            if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                return Noticed::Everything;
            }
            let Some(at) = self.dirs.get(&event.wd()) else {
                // A watch removed at the end of a walk: its last events mean nothing.
                continue;
            };
            match event.file_name().map(|n| n.to_str()) {
                // The directory's own event, or its watch gone with it.
                None => return Noticed::Everything,
                // Never walked, so never found.
                Some(Err(_)) => {}
                // A directory the walk does not enter changes nothing it finds.
                Some(Ok(name)) if flags.contains(ReadFlags::ISDIR) => {
                    if !is_blocked_dir(name) {
                        return Noticed::Everything;
                    }
                }
                Some(Ok(name)) if is_skipped_file(name) => {}
                Some(Ok(name)) if at.is_empty() => {
                    files.insert(name.to_owned());
                }
                Some(Ok(name)) => {
                    files.insert(format!("{at}/{name}"));
                }
            }
        }
        Noticed::Everything
    }

    /// True when no event is queued (asked of the kernel, nothing consumed); false when
    /// that cannot be told.
    pub(crate) fn is_quiet(&self) -> bool {
        self.fd
            .as_ref()
            .is_some_and(|fd| rustix::io::ioctl_fionread(fd).is_ok_and(|queued| queued == 0))
    }

    /// Reads and drops the queued events (up to [`MAX_EVENTS`] of them; any left over make
    /// the next refresh look at more than it needs, never less).
    pub(crate) fn drain(&mut self) {
        let Some(fd) = &self.fd else { return };
        let mut buf = [MaybeUninit::<u8>::uninit(); 8192];
        let mut reader = inotify::Reader::new(fd, &mut buf);
        for _ in 0..MAX_EVENTS {
            match reader.next() {
                Ok(_) | Err(Errno::INTR) => {}
                Err(_) => return,
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            close_later(fd);
        }
    }
}

/// Closes an inotify instance on a thread kept for it. Closing one waits for the kernel's
/// grace period on notification marks, 8–13 ms here whether it still watches anything or
/// not, which would stall whatever let go of a sandbox (an async worker, a run's end).
fn close_later(fd: OwnedFd) {
    static CLOSER: OnceLock<Option<Sender<OwnedFd>>> = OnceLock::new();
    let closer = CLOSER.get_or_init(|| {
        let (send, receive) = std::sync::mpsc::channel::<OwnedFd>();
        std::thread::Builder::new()
            .name("inotify-close".into())
            .spawn(move || receive.into_iter().for_each(drop))
            .ok()?;
        Some(send)
    });
    // Without the thread (or after it), it is closed here.
    if let Some(closer) = closer {
        let _ = closer.send(fd);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, Instant};

    use super::*;

    /// Whether an inotify instance of this process watches the inode `ino`: the kernel
    /// lists each watch of an instance in its descriptor's `fdinfo`, as `ino:` in hex.
    fn watched(ino: u64) -> bool {
        let wanted = format!("ino:{ino:x}");
        std::fs::read_dir("/proc/self/fdinfo")
            .unwrap()
            .flatten()
            .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
            .any(|info| {
                info.lines().any(|line| {
                    line.starts_with("inotify wd:") && line.split_whitespace().any(|f| f == wanted)
                })
            })
    }

    /// A dropped watch's instance is closed on the closer thread, and its watches go with
    /// it: otherwise every sandbox let go would keep an instance (of the user's 128) open.
    #[test]
    fn a_dropped_watch_is_closed_by_the_closer() {
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let inodes: Vec<u64> = dirs
            .iter()
            .map(|d| std::fs::metadata(d.path()).unwrap().ino())
            .collect();
        let watches: Vec<Watch> = dirs
            .iter()
            .map(|dir| {
                let held = std::fs::File::open(dir.path()).unwrap();
                let mut watch = Watch::new().unwrap();
                assert!(watch.enter(held.as_fd(), ""));
                watch
            })
            .collect();
        assert!(inodes.iter().all(|&ino| watched(ino)));
        drop(watches);
        let deadline = Instant::now() + Duration::from_secs(30);
        while inodes.iter().any(|&ino| watched(ino)) {
            assert!(
                Instant::now() < deadline,
                "a dropped watch was still open after 30 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
