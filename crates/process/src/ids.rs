//! Who this process runs as.

/// The effective uid (0 when running as root).
pub fn euid() -> u32 {
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    unsafe { libc::geteuid() }
}

/// The real uid.
pub fn uid() -> u32 {
    // SAFETY: getuid(2) takes nothing and cannot fail.
    unsafe { libc::getuid() }
}

/// Whether this process runs as root (may change ownership, join cgroups, enter namespaces).
pub fn is_root() -> bool {
    euid() == 0
}
