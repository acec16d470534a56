//! Per-process rlimits, set in the child between fork and exec and inherited by everything
//! it starts.

/// One rlimit a sandbox process starts with (soft = hard, so it cannot be raised).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rlimit {
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
    /// Applies the limit to the calling process. Async-signal-safe: only `setrlimit(2)`
    /// and `signal(2)`, so it may run between fork and exec.
    pub(crate) fn apply(self) -> std::io::Result<()> {
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
