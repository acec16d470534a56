//! What a child does between fork and exec, behind safe types: join a cgroup, take
//! rlimits, enter namespaces, die with its parent. Everything here is prepared before the
//! fork, so the child only makes async-signal-safe system calls and allocates nothing.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

/// One rlimit a child starts with (soft = hard, so it cannot raise it again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rlimit {
    /// `RLIMIT_NOFILE`.
    OpenFiles(u64),
    /// `RLIMIT_FSIZE`: a write past it fails with `EFBIG` (`SIGXFSZ` is ignored).
    FileSize(u64),
    /// `RLIMIT_NPROC`: processes of the real uid (a per-sandbox uid makes it per sandbox).
    Processes(u64),
    /// `RLIMIT_DATA`: private writable memory per process.
    Data(u64),
}

impl Rlimit {
    /// Applies the limit to the calling process; only `setrlimit(2)` and `signal(2)`.
    fn apply(self) -> std::io::Result<()> {
        let (resource, value) = match self {
            Self::OpenFiles(v) => (libc::RLIMIT_NOFILE, v),
            Self::FileSize(v) => {
                // SAFETY: signal(2) with SIG_IGN installs no handler; ignored signals stay
                // ignored across exec, so writes past the limit fail instead of killing.
                unsafe {
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                }
                (libc::RLIMIT_FSIZE, v)
            }
            Self::Processes(v) => (libc::RLIMIT_NPROC, v),
            Self::Data(v) => (libc::RLIMIT_DATA, v),
        };
        let limit = libc::rlimit {
            rlim_cur: value,
            rlim_max: value,
        };
        // SAFETY: setrlimit(2) reads the struct we pass and touches nothing else.
        if unsafe { libc::setrlimit(resource, &limit) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

/// The `cgroup.procs` files a child writes itself into (one per cgroup v1 hierarchy, one
/// under v2), as C strings made before the fork.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupProcs(Vec<CString>);

impl CgroupProcs {
    /// The `cgroup.procs` files of `dirs` (duplicates folded); fails on a path with a NUL.
    pub fn of_dirs(dirs: impl IntoIterator<Item = PathBuf>) -> std::io::Result<Self> {
        let mut files = Vec::new();
        for dir in dirs {
            let path = dir.join("cgroup.procs");
            let file = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("bad cgroup path {}", dir.display()),
                )
            })?;
            if !files.contains(&file) {
                files.push(file);
            }
        }
        Ok(Self(files))
    }

    /// Moves the calling process in (open, write "0" — the writer itself —, close).
    fn join(&self) -> std::io::Result<()> {
        for file in &self.0 {
            // SAFETY: open(2)/write(2)/close(2) on a NUL-terminated path we own and a
            // static buffer; no allocation, so this is safe between fork and exec.
            unsafe {
                let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                let error = std::io::Error::last_os_error();
                libc::close(fd);
                if written != 1 {
                    return Err(error);
                }
            }
        }
        Ok(())
    }
}

/// What a child sets up for itself before exec, in this order: cgroup, rlimits,
/// namespaces, parent-death signal.
#[derive(Debug, Clone, Default)]
pub struct ChildSetup {
    /// The cgroup to join, so nothing the child forks escapes its count.
    pub cgroup: Option<CgroupProcs>,
    /// Rlimits, inherited by everything it starts.
    pub rlimits: Vec<Rlimit>,
    /// Namespace files (`/proc/<pid>/ns/net`, a bind-mounted namespace) to `setns(2)` into.
    pub namespaces: Vec<Arc<OwnedFd>>,
    /// SIGKILL the child when the thread that spawned it ends (this service dying, even by
    /// SIGKILL); under bubblewrap its PID namespace goes with it.
    pub die_with_parent: bool,
}

impl ChildSetup {
    /// Only the parent-death signal.
    pub fn dying_with_parent() -> Self {
        Self {
            die_with_parent: true,
            ..Self::default()
        }
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.cgroup.is_none()
            && self.rlimits.is_empty()
            && self.namespaces.is_empty()
            && !self.die_with_parent
    }

    /// Arranges for `command`'s child to do all this before exec (after any earlier
    /// arrangement); a failing step fails the spawn with its error.
    pub fn install(self, command: &mut tokio::process::Command) {
        if self.is_empty() {
            return;
        }
        // SAFETY: `apply` only makes async-signal-safe system calls (open, write, close,
        // setrlimit, signal, setns, prctl) on data prepared before the fork, and allocates
        // nothing.
        unsafe {
            command.pre_exec(move || self.apply());
        }
    }

    fn apply(&self) -> std::io::Result<()> {
        if let Some(cgroup) = &self.cgroup {
            cgroup.join()?;
        }
        for limit in &self.rlimits {
            limit.apply()?;
        }
        for namespace in &self.namespaces {
            // SAFETY: setns(2) on a descriptor we keep open; nstype 0 accepts any kind.
            if unsafe { libc::setns(namespace.as_raw_fd(), 0) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        if self.die_with_parent {
            // SAFETY: prctl(2) with two integers; touches no memory of the parent.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            }
        }
        Ok(())
    }
}
