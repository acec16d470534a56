//! A new network namespace, made on a short-lived thread of its own: only that thread
//! enters it, sets its loopback up, runs the caller's code inside (e.g. binds a listener
//! there), and ends. The namespace lives on as long as its descriptor (or a process in it);
//! children join it with [`crate::ChildSetup::namespaces`], and later code runs inside it
//! the same way ([`NetNamespace::run_inside`]). A socket made inside stays the namespace's
//! wherever it is used from.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

/// `SIOCGIFFLAGS` / `SIOCSIFFLAGS` (linux/sockios.h).
const SIOCGIFFLAGS: libc::c_ulong = 0x8913;
const SIOCSIFFLAGS: libc::c_ulong = 0x8914;

/// An open network namespace: its descriptor and its inode (as in `/proc/<pid>/ns/net` →
/// `net:[inode]`).
#[derive(Debug)]
pub struct NetNamespace {
    /// Keeps the namespace alive; what a child `setns`es into (shared with the
    /// [`crate::ChildSetup`]s that join it).
    pub fd: Arc<OwnedFd>,
    /// Tells namespaces apart.
    pub inode: u64,
}

impl NetNamespace {
    /// Makes a namespace with loopback up and runs `inside` in it (on the namespace's
    /// thread, before it ends). Needs `CAP_SYS_ADMIN` (a root service).
    pub fn create<T, F>(inside: F) -> io::Result<(Self, T)>
    where
        T: Send + 'static,
        F: FnOnce() -> io::Result<T> + Send + 'static,
    {
        on_own_thread(move || {
            let namespace = enter_new()?;
            loopback_up()?;
            Ok((namespace, inside()?))
        })
    }

    /// Runs `inside` in this namespace, on a short-lived thread of its own that joins it
    /// and ends. Needs `CAP_SYS_ADMIN` (a root service).
    pub fn run_inside<T, F>(&self, inside: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> io::Result<T> + Send + 'static,
    {
        let fd = self.fd.clone();
        on_own_thread(move || {
            // SAFETY: setns(2) on a descriptor we keep open moves only the calling
            // thread, which is this one's own and ends right after.
            if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            inside()
        })
    }
}

/// Runs `f` on a short-lived thread of its own and waits for it: a thread that joins a
/// namespace never leaves it, so it must be one that ends.
fn on_own_thread<T, F>(f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(f)?
        .join()
        .map_err(|_| io::Error::other("the network namespace thread panicked"))?
}

/// Moves the calling thread into a new network namespace and opens it.
fn enter_new() -> io::Result<NetNamespace> {
    // SAFETY: unshare(2) with CLONE_NEWNET moves only the calling thread, which is the
    // namespace's own and ends right after.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = std::fs::File::open("/proc/thread-self/ns/net")?;
    let inode = std::os::unix::fs::MetadataExt::ino(&fd.metadata()?);
    Ok(NetNamespace {
        fd: Arc::new(fd.into()),
        inode,
    })
}

/// Sets `lo` up in the calling thread's network namespace (a new one starts with it down).
fn loopback_up() -> io::Result<()> {
    // SAFETY: socket(2); the descriptor is owned right below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we pass, nothing else.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), SIOCGIFFLAGS as _, &mut req) != 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), SIOCSIFFLAGS as _, &req) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
