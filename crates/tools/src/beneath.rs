//! File operations the service (root) performs inside a workspace while the sandbox's own
//! processes may be running there. A path is never resolved through the workspace: each
//! directory on the way is opened with `O_NOFOLLOW` and the next name is looked up relative
//! to it, so a process that swaps a directory for a symlink between two steps cannot lead
//! the service out (to chown, write or delete a host file as root).

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use draftsmith_core::path::MAX_PATH_BYTES;
use rustix::fs::{AtFlags, Dir, FileType, Gid, Mode, OFlags, RenameFlags, Uid};
use rustix::io::Errno;

/// How deep a tree the service goes into: no draft path nests deeper (each level takes a
/// name and a slash), while a sandboxed process can nest directories without end, and a
/// recursive walk holds a descriptor and a stack frame per level.
pub const MAX_DEPTH: usize = MAX_PATH_BYTES / 2;

/// How a directory is opened: never through a link in its place.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Opens the directory `name` below `parent`, refusing a symlink in its place.
pub fn open_dir(parent: BorrowedFd<'_>, name: &str) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty())?)
}

/// Opens a directory the service itself owns the path to (a workspace root).
pub fn open_root(path: &Path) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(path, DIR_FLAGS, Mode::empty())?)
}

/// Opens `dir` (`/`-separated, relative) below `root` one directory at a time; a part
/// that is missing or not a real directory is an error (see [`is_gone`]).
fn open_dirs(root: BorrowedFd<'_>, dir: &str) -> std::io::Result<OwnedFd> {
    let mut current = rustix::io::fcntl_dupfd_cloexec(root, 0)?;
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        current = open_dir(current.as_fd(), part)?;
    }
    Ok(current)
}

/// `path` relative to `root`, as a `/`-separated string.
fn below<'p>(root: &Path, path: &'p Path) -> std::io::Result<&'p str> {
    path.strip_prefix(root)
        .ok()
        .and_then(Path::to_str)
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "outside the workspace"))
}

/// Gives what `fd` names to `owner` (and its group), when there is one.
fn give(fd: BorrowedFd<'_>, owner: Option<u32>) -> std::io::Result<()> {
    if let Some(uid) = owner {
        rustix::fs::fchown(fd, Some(ids(uid).0), Some(ids(uid).1))?;
    }
    Ok(())
}

fn ids(uid: u32) -> (Uid, Gid) {
    (Uid::from_raw(uid), Gid::from_raw(uid))
}

/// Opens `dir` (`/`-separated, relative) below `root`, making each missing directory (given
/// to `owner`) and replacing whatever stands in the way that is not a real directory.
pub fn make_dirs(root: BorrowedFd<'_>, dir: &str, owner: Option<u32>) -> std::io::Result<OwnedFd> {
    let mut current = rustix::io::fcntl_dupfd_cloexec(root, 0)?;
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        let next = match open_dir(current.as_fd(), part) {
            Ok(fd) => fd,
            Err(e) => {
                match e.raw_os_error().map(Errno::from_raw_os_error) {
                    Some(Errno::NOENT) => {}
                    // A symlink (ELOOP) or a file (ENOTDIR) in the way: remove it, never follow.
                    Some(Errno::LOOP | Errno::NOTDIR) => {
                        rustix::fs::unlinkat(current.as_fd(), part, AtFlags::empty())?;
                    }
                    _ => return Err(e),
                }
                rustix::fs::mkdirat(current.as_fd(), part, Mode::from_raw_mode(0o755))?;
                let fd = open_dir(current.as_fd(), part)?;
                give(fd.as_fd(), owner)?;
                fd
            }
        };
        current = next;
    }
    Ok(current)
}

/// Opens `dir` below `root` when every part of it is a real directory; `None` otherwise.
pub fn existing_dir(root: BorrowedFd<'_>, dir: &str) -> std::io::Result<Option<OwnedFd>> {
    match open_dirs(root, dir) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if is_gone(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The directory holding `path` (below `root`, with no link in it when the path policy
/// checked it), opened from `root` one directory at a time without following links, and
/// `path`'s last name ("" for `root` itself). A directory that has since gone or become a
/// link is an error (`NotFound`, or `ELOOP` / `ENOTDIR`), never followed.
pub fn parent_of(root: &Path, path: &Path) -> std::io::Result<(OwnedFd, String)> {
    let rel = below(root, path)?;
    let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    let dir = open_dirs(open_root(root)?.as_fd(), dir)?;
    Ok((dir, name.to_owned()))
}

/// Opens `path` (see [`parent_of`]) with `flags`, refusing a link at its last name too.
pub fn open_in(root: &Path, path: &Path, flags: OFlags) -> std::io::Result<File> {
    let (dir, name) = parent_of(root, path)?;
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = if name.is_empty() {
        dir
    } else {
        rustix::fs::openat(&dir, name.as_str(), flags, Mode::empty())?
    };
    Ok(File::from(fd))
}

/// Removes `path` (see [`parent_of`]): a file or link is unlinked, a directory removed with
/// everything in it. Returns whether it was a directory.
pub fn remove_in(root: &Path, path: &Path) -> std::io::Result<bool> {
    let (dir, name) = parent_of(root, path)?;
    if name.is_empty() {
        return Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            "the workspace itself",
        ));
    }
    let stat = rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)?;
    if FileType::from_raw_mode(stat.st_mode).is_dir() {
        remove_tree(dir.as_fd(), &name)?;
        Ok(true)
    } else {
        rustix::fs::unlinkat(&dir, name.as_str(), AtFlags::empty())?;
        Ok(false)
    }
}

/// Moves `from` to `to` (both below `root`, see [`parent_of`]).
pub fn rename_in(root: &Path, from: &Path, to: &Path) -> std::io::Result<()> {
    let (from_dir, from_name) = parent_of(root, from)?;
    let (to_dir, to_name) = parent_of(root, to)?;
    if from_name.is_empty() || to_name.is_empty() {
        return Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            "the workspace itself",
        ));
    }
    Ok(rustix::fs::renameat(
        &from_dir,
        from_name.as_str(),
        &to_dir,
        to_name.as_str(),
    )?)
}

/// Gives each directory on `relative`'s way below `root`, and what is at `relative`, to
/// `uid`, without following links; a part that is missing or became a link ends it.
pub fn give_path(root: &Path, relative: &str, uid: u32) -> std::io::Result<()> {
    let (owner, group) = ids(uid);
    let (dirs, name) = relative.rsplit_once('/').unwrap_or(("", relative));
    let mut current = open_root(root)?;
    for part in dirs.split('/').filter(|p| !p.is_empty()) {
        current = match open_dir(current.as_fd(), part) {
            Ok(fd) => fd,
            Err(e) if is_gone(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        rustix::fs::fchown(&current, Some(owner), Some(group))?;
    }
    match rustix::fs::chownat(
        &current,
        name,
        Some(owner),
        Some(group),
        AtFlags::SYMLINK_NOFOLLOW,
    ) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A regular file met by [`walk_files`]: its directory (held open), name, `/`-separated
/// path below the walk's start, and its `lstat`.
pub struct Met<'a> {
    pub dir: BorrowedFd<'a>,
    pub name: &'a str,
    pub rel: &'a str,
    pub stat: &'a rustix::fs::Stat,
}

impl Met<'_> {
    /// Reads at most `limit` bytes of the file, never through a link planted at its name
    /// since (it may have grown since its stat).
    pub fn read(&self, limit: u64) -> std::io::Result<Vec<u8>> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let file = File::from(rustix::fs::openat(
            self.dir,
            self.name,
            flags,
            Mode::empty(),
        )?);
        // Sized from the stat, so a file read whole takes one read (and one at its end).
        let expected = u64::try_from(self.stat.st_size).unwrap_or(0).min(limit);
        let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        std::io::Read::read_to_end(&mut std::io::Read::take(file, limit), &mut bytes)?;
        Ok(bytes)
    }
}

/// Calls `visit` for every regular file below the directory `dir`, entering each directory
/// `enter` allows (by name) and never following a link: every directory is held open and
/// looked into by name, so one swapped for a link meanwhile is skipped, not followed.
/// Names that are not UTF-8 are skipped (they can be no draft path), and so is what lies
/// below a directory whose path is already longer than a draft path may be (see
/// [`MAX_DEPTH`]). `entered` is shown each directory (`dir` itself as "") before it is
/// read.
pub fn walk_files(
    dir: BorrowedFd<'_>,
    enter: &dyn Fn(&str) -> bool,
    entered: &mut dyn FnMut(BorrowedFd<'_>, &str),
    visit: &mut dyn FnMut(&Met<'_>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    walk_below(dir, "", enter, entered, visit)
}

fn walk_below(
    dir: BorrowedFd<'_>,
    prefix: &str,
    enter: &dyn Fn(&str) -> bool,
    entered: &mut dyn FnMut(BorrowedFd<'_>, &str),
    visit: &mut dyn FnMut(&Met<'_>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    entered(dir, prefix);
    for name in names(dir)? {
        let stat = match rustix::fs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory if enter(&name) && rel.len() <= MAX_PATH_BYTES => {
                match open_dir(dir, &name) {
                    Ok(sub) => walk_below(sub.as_fd(), &rel, enter, entered, visit)?,
                    Err(e) if is_gone(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            FileType::RegularFile => visit(&Met {
                dir,
                name: &name,
                rel: &rel,
                stat: &stat,
            })?,
            _ => {}
        }
    }
    Ok(())
}

/// Makes the missing directories of `dir` (below `root`), returning those it made,
/// outermost first; something other than a real directory in the way is an error.
pub fn make_missing_dirs(root: &Path, dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let rel = below(root, dir)?;
    let mut current = open_root(root)?;
    let mut at = root.to_path_buf();
    let mut made = Vec::new();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        at.push(part);
        current = match open_dir(current.as_fd(), part) {
            Ok(fd) => fd,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                rustix::fs::mkdirat(&current, part, Mode::from_raw_mode(0o755))?;
                made.push(at.clone());
                open_dir(current.as_fd(), part)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(made)
}

/// Whether `e` says the name is missing or is not a real directory (a link or a file).
pub fn is_gone(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::NotFound
        || matches!(
            e.raw_os_error().map(Errno::from_raw_os_error),
            Some(Errno::LOOP | Errno::NOTDIR)
        )
}

/// Writes `content` as `name` in `dir` through a fresh temporary file (`temp`, created
/// exclusively, so a link planted there is never followed) put in its place ([`replace`]);
/// the file is given to `owner` before it appears. Returns the written file's metadata.
pub fn write_file(
    dir: BorrowedFd<'_>,
    name: &str,
    temp: &str,
    content: &[u8],
    owner: Option<u32>,
) -> std::io::Result<std::fs::Metadata> {
    let occupied = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) if FileType::from_raw_mode(stat.st_mode).is_dir() => {
            remove_tree(dir, name)?;
            false
        }
        Ok(_) => true,
        Err(_) => false,
    };
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mode = Mode::from_raw_mode(0o644);
    let fd = match rustix::fs::openat(dir, temp, flags, mode) {
        Err(Errno::EXIST) => {
            rustix::fs::unlinkat(dir, temp, AtFlags::empty())?;
            rustix::fs::openat(dir, temp, flags, mode)?
        }
        other => other?,
    };
    let mut file = File::from(fd);
    let written = file
        .write_all(content)
        .and_then(|()| give(file.as_fd(), owner))
        .and_then(|()| file.metadata());
    let meta = match written {
        Ok(meta) => meta,
        Err(e) => {
            let _ = rustix::fs::unlinkat(dir, temp, AtFlags::empty());
            return Err(e);
        }
    };
    replace(dir, temp, name, occupied)?;
    Ok(meta)
}

/// Puts the finished file `temp` in `name`'s place in `dir` at once: a reader finds the old
/// file there or the new one, never neither. Where something was found at `name`
/// (`occupied`), the two are exchanged and the old one, now at `temp`, is removed (a tree
/// too, never through a link): a rename over a file makes ext4 (`auto_da_alloc`) write the
/// new file's blocks out there and then, for a crash's sake, half of a one-file write's
/// cost here, where a workspace is scratch and what lasts is what a run lands in the
/// store. Otherwise, or where it is gone by now or the filesystem cannot exchange, a rename.
pub fn replace(dir: BorrowedFd<'_>, temp: &str, name: &str, occupied: bool) -> std::io::Result<()> {
    if !occupied {
        return Ok(rustix::fs::renameat(dir, temp, dir, name)?);
    }
    match rustix::fs::renameat_with(dir, temp, dir, name, RenameFlags::EXCHANGE) {
        Ok(()) => match rustix::fs::unlinkat(dir, temp, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(Errno::ISDIR) => remove_tree(dir, temp),
            Err(e) => Err(e.into()),
        },
        Err(Errno::NOENT | Errno::INVAL | Errno::NOSYS) => {
            Ok(rustix::fs::renameat(dir, temp, dir, name)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes `path` and, if it is a directory, everything below it, never following a link,
/// however deep a sandboxed process nested it: [`remove_tree`] goes [`MAX_DEPTH`] levels
/// down, and a deeper tree goes to `rm -rf`, whose walk holds a bounded number of
/// directories open. (`std::fs::remove_dir_all` recurses a frame per level: a chain of
/// 30,000 directories, made in a second, overflowed a 2 MiB thread's stack and aborted
/// the process.) A missing `path` is no error.
pub fn remove_dir_all(path: &Path) -> std::io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
    else {
        return Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            "no directory to remove",
        ));
    };
    let dir = match open_root(parent) {
        Ok(dir) => dir,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let Err(refused) = remove_tree(dir.as_fd(), name) else {
        return Ok(());
    };
    let removed = std::process::Command::new("rm")
        .args(["-rf", "--one-file-system", "--"])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if removed { Ok(()) } else { Err(refused) }
}

/// Removes `name` in `dir` and, if it is a directory, everything below it, without
/// following any symlink.
pub fn remove_tree(dir: BorrowedFd<'_>, name: &str) -> std::io::Result<()> {
    remove_below(dir, name, 0)
}

/// [`remove_tree`] of `name`, `depth` levels below where it started; a tree deeper than
/// [`MAX_DEPTH`] is refused, not followed down.
fn remove_below(dir: BorrowedFd<'_>, name: &str, depth: usize) -> std::io::Result<()> {
    let sub = match open_dir(dir, name) {
        Ok(sub) => sub,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) if is_gone(&e) => {
            return Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?);
        }
        Err(e) => return Err(e),
    };
    let children = names(sub.as_fd())?;
    if depth >= MAX_DEPTH && !children.is_empty() {
        return Err(std::io::Error::other(
            "directories nest deeper than any draft path",
        ));
    }
    for child in children {
        remove_below(sub.as_fd(), &child, depth + 1)?;
    }
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The names in the directory `fd` (without `.` and `..`; names that are not UTF-8 are
/// skipped, as the workspace walk skips them).
pub fn names(fd: BorrowedFd<'_>) -> std::io::Result<Vec<String>> {
    Ok(entries(fd)?.into_iter().map(|(name, _)| name).collect())
}

/// [`names`] with each entry's type as the directory gives it (`FileType::Unknown` where
/// the file system does not say).
pub fn entries(fd: BorrowedFd<'_>) -> std::io::Result<Vec<(String, FileType)>> {
    let mut dir = Dir::read_from(fd)?;
    let mut out = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if name != "." && name != ".." {
            out.push((name.to_owned(), entry.file_type()));
        }
    }
    Ok(out)
}

/// Gives every entry below the directory `fd` to `uid`, except regular files owned by
/// `shared_owner` and the inside of directories `enter` refuses; a name swapped for a
/// symlink meanwhile is changed as the link itself, never followed.
pub fn chown_tree(
    fd: BorrowedFd<'_>,
    uid: u32,
    shared_owner: u32,
    enter: &dyn Fn(&str) -> bool,
) -> std::io::Result<()> {
    chown_below(fd, uid, shared_owner, enter, 0)
}

/// [`chown_tree`] of what `fd` holds, `depth` levels below where it started; nothing deeper
/// than [`MAX_DEPTH`] is entered (the service writes no such path: what is there is the
/// sandbox's own).
fn chown_below(
    fd: BorrowedFd<'_>,
    uid: u32,
    shared_owner: u32,
    enter: &dyn Fn(&str) -> bool,
    depth: usize,
) -> std::io::Result<()> {
    let (owner, group) = ids(uid);
    for name in names(fd)? {
        let stat = match rustix::fs::statat(fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        let kind = FileType::from_raw_mode(stat.st_mode);
        let shared = kind.is_file() && stat.st_uid == shared_owner;
        if !shared && (stat.st_uid != uid || stat.st_gid != uid) {
            match rustix::fs::chownat(
                fd,
                name.as_str(),
                Some(owner),
                Some(group),
                AtFlags::SYMLINK_NOFOLLOW,
            ) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if kind.is_dir() && enter(&name) && depth < MAX_DEPTH {
            match open_dir(fd, &name) {
                Ok(sub) => chown_below(sub.as_fd(), uid, shared_owner, enter, depth + 1)?,
                Err(e) if is_gone(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::MetadataExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// A scratch directory holding an empty `workspace` and an empty `outside` (the host's
    /// side); both paths are returned with the guard that deletes them.
    fn workspace_and_outside() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let base = tempfile::tempdir().unwrap();
        let (workspace, outside) = (base.path().join("workspace"), base.path().join("outside"));
        std::fs::create_dir_all(&workspace).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        (base, workspace, outside)
    }

    /// A chain of `levels` directories `d/d/…` below `root` with `deep.txt` at its bottom and
    /// `top.txt` beside it; returns the chain's first directory.
    fn chain(root: &Path, levels: usize) -> std::path::PathBuf {
        let bottom = root.join(vec!["d"; levels].join("/"));
        std::fs::create_dir_all(&bottom).unwrap();
        std::fs::write(bottom.join("deep.txt"), "deep").unwrap();
        std::fs::write(root.join("top.txt"), "top").unwrap();
        root.join("d")
    }

    #[test]
    fn no_walk_goes_deeper_than_a_draft_path() {
        let dir = tempfile::tempdir().unwrap();
        // 600 levels: a path of 1,200 bytes, over `MAX_PATH_BYTES`.
        chain(dir.path(), 600);
        let root = open_root(dir.path()).unwrap();
        let mut seen = Vec::new();
        walk_files(root.as_fd(), &|_| true, &mut |_, _| {}, &mut |met| {
            seen.push(met.name.to_owned());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, ["top.txt"]);
        // Removing refuses the tree rather than following it down, and leaves it whole.
        let refused = remove_tree(root.as_fd(), "d").unwrap_err();
        assert!(refused.to_string().contains("deeper"), "{refused}");
        assert!(dir.path().join("d").is_dir());
    }

    #[test]
    fn a_tree_of_any_depth_is_deleted_without_exhausting_the_stack() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("top");
        // 30,000 levels (a path too long to name whole), made as a sandboxed process would:
        // `std::fs::remove_dir_all` overflowed this thread's stack on such a chain.
        let mut fd = rustix::fs::open(dir.path(), DIR_FLAGS, Mode::empty()).unwrap();
        rustix::fs::mkdirat(&fd, "top", Mode::from_raw_mode(0o755)).unwrap();
        fd = open_dir(fd.as_fd(), "top").unwrap();
        for _ in 0..30_000 {
            rustix::fs::mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).unwrap();
            fd = open_dir(fd.as_fd(), "d").unwrap();
        }
        drop(fd);
        // On a thread with the stack of tokio's blocking threads, where a frame per level
        // does not fit.
        let path = top.clone();
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || remove_dir_all(&path))
            .unwrap()
            .join()
            .unwrap()
            .unwrap();
        assert!(!top.exists());
        remove_dir_all(&top).unwrap();
    }

    #[test]
    fn a_tree_as_deep_as_a_draft_path_is_removed_whole() {
        let dir = tempfile::tempdir().unwrap();
        chain(dir.path(), MAX_DEPTH - 1);
        let root = open_root(dir.path()).unwrap();
        remove_tree(root.as_fd(), "d").unwrap();
        assert!(!dir.path().join("d").exists());
    }

    /// A hostile process's loop: `dir/a` is a real directory, then a symlink to `outside`,
    /// and back, as fast as it can, until `stop`.
    fn swapper(
        workspace: &Path,
        outside: &Path,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        let (real, parked) = (workspace.join("a"), workspace.join("a.real"));
        let outside = outside.to_path_buf();
        std::thread::spawn(move || {
            // Each state is held for a varying while, so some walk sees the directory at
            // one step and the link at the next.
            let mut hold = 0u32;
            while !stop.load(Ordering::Relaxed) {
                hold = (hold + 7) % 50;
                let _ = std::fs::rename(&real, &parked);
                let _ = std::os::unix::fs::symlink(&outside, &real);
                std::thread::sleep(std::time::Duration::from_micros(u64::from(hold)));
                let _ = std::fs::remove_file(&real);
                let _ = std::fs::rename(&parked, &real);
                std::thread::sleep(std::time::Duration::from_micros(u64::from(50 - hold)));
            }
        })
    }

    #[test]
    fn a_directory_swapped_for_a_link_never_leads_the_service_out() {
        let (_base, workspace, outside) = workspace_and_outside();
        std::fs::create_dir_all(workspace.join("a")).unwrap();
        std::fs::write(workspace.join("a/inside.txt"), "mine").unwrap();
        std::fs::write(outside.join("host.txt"), "the host's").unwrap();
        let host_owner = std::fs::metadata(outside.join("host.txt")).unwrap().uid();
        let uid = host_owner + 4242;

        let stop = Arc::new(AtomicBool::new(false));
        let hostile = swapper(&workspace, &outside, stop.clone());
        let root = open_root(&workspace).unwrap();
        for round in 0..500 {
            let enter = |_: &str| true;
            chown_tree(root.as_fd(), uid, 65534, &enter).unwrap();
            // A write may fail (its directory was swapped away and removed); it must
            // never land outside.
            if let Ok(dir) = make_dirs(root.as_fd(), "a", Some(uid)) {
                let name = format!("w{round}.txt");
                let _ = write_file(dir.as_fd(), &name, ".w.tmp", b"written", Some(uid));
            }
        }
        stop.store(true, Ordering::Relaxed);
        hostile.join().unwrap();

        let host = std::fs::metadata(outside.join("host.txt")).unwrap();
        assert_eq!(host.uid(), host_owner, "a host file was handed over");
        let escaped: Vec<String> = names(open_root(&outside).unwrap().as_fd()).unwrap();
        assert_eq!(
            escaped,
            vec!["host.txt".to_owned()],
            "the service wrote outside"
        );
        assert_eq!(std::fs::metadata(&outside).unwrap().uid(), host_owner);
    }

    #[test]
    fn links_and_files_in_the_way_are_replaced_and_trees_removed() {
        let (_base, workspace, outside) = workspace_and_outside();
        std::os::unix::fs::symlink(&outside, workspace.join("src")).unwrap();
        std::fs::write(workspace.join("lib"), "a file").unwrap();
        let root = open_root(&workspace).unwrap();

        let src = make_dirs(root.as_fd(), "src/deep", None).unwrap();
        write_file(src.as_fd(), "app.js", ".app.js.tmp", b"x", None).unwrap();
        make_dirs(root.as_fd(), "lib", None).unwrap();
        assert!(
            std::fs::symlink_metadata(workspace.join("src"))
                .unwrap()
                .is_dir()
        );
        assert!(
            std::fs::symlink_metadata(workspace.join("lib"))
                .unwrap()
                .is_dir()
        );
        assert_eq!(
            std::fs::read(workspace.join("src/deep/app.js")).unwrap(),
            b"x"
        );
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());

        // A planted link at the temporary name is not written through.
        std::os::unix::fs::symlink(outside.join("planted"), workspace.join(".b.tmp")).unwrap();
        write_file(root.as_fd(), "b", ".b.tmp", b"y", None).unwrap();
        assert!(!outside.join("planted").exists());
        assert_eq!(std::fs::read(workspace.join("b")).unwrap(), b"y");

        // A directory where a file goes is removed with its tree, links not followed.
        std::fs::create_dir_all(workspace.join("c/d")).unwrap();
        std::fs::write(outside.join("keep"), "k").unwrap();
        std::os::unix::fs::symlink(&outside, workspace.join("c/d/out")).unwrap();
        write_file(root.as_fd(), "c", ".c.tmp", b"z", None).unwrap();
        assert_eq!(std::fs::read(workspace.join("c")).unwrap(), b"z");
        assert_eq!(std::fs::read(outside.join("keep")).unwrap(), b"k");
        assert_eq!(existing_dir(root.as_fd(), "c").unwrap().map(|_| ()), None);
    }

    /// A finished file takes the place of whatever is at its name, a file, a link or a
    /// tree (links in it not followed), or of nothing; no temporary name is left behind.
    /// (Where a write found a tree, it removed it first: one swapped in after that look is
    /// exchanged and removed here.)
    #[test]
    fn a_replace_takes_the_place_of_anything_and_leaves_nothing_behind() {
        let (_base, workspace, outside) = workspace_and_outside();
        std::fs::create_dir_all(workspace.join("tree/deep")).unwrap();
        std::fs::write(outside.join("keep"), "k").unwrap();
        std::fs::write(workspace.join("file"), "old").unwrap();
        std::os::unix::fs::symlink(outside.join("keep"), workspace.join("link")).unwrap();
        std::os::unix::fs::symlink(&outside, workspace.join("tree/deep/out")).unwrap();
        let root = open_root(&workspace).unwrap();
        for name in ["file", "link", "tree", "new"] {
            let temp = format!(".{name}.tmp");
            std::fs::write(workspace.join(&temp), name).unwrap();
            replace(root.as_fd(), &temp, name, name != "new").unwrap();
            assert_eq!(
                std::fs::read(workspace.join(name)).unwrap(),
                name.as_bytes()
            );
        }
        let mut left = names(root.as_fd()).unwrap();
        left.sort();
        assert_eq!(left, ["file", "link", "new", "tree"]);
        assert_eq!(std::fs::read(outside.join("keep")).unwrap(), b"k");
        assert_eq!(
            names(open_root(&outside).unwrap().as_fd()).unwrap(),
            ["keep"]
        );
    }

    /// What the file tools do after their path check, with a directory on the way turned
    /// into a link out meanwhile: read, delete and move all fail; nothing outside changes.
    #[test]
    fn reads_removals_and_moves_never_pass_a_link_on_the_way() {
        let (_base, root, outside) = workspace_and_outside();
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::write(outside.join("secret"), "host").unwrap();
        std::fs::write(root.join("real/mine"), "mine").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("src")).unwrap();

        let through = root.join("src/secret");
        assert!(is_gone(
            &open_in(&root, &through, OFlags::RDONLY).unwrap_err()
        ));
        assert!(is_gone(&remove_in(&root, &through).unwrap_err()));
        let moved_in = rename_in(&root, &through, &root.join("real/stolen"));
        assert!(is_gone(&moved_in.unwrap_err()));
        let moved_out = rename_in(&root, &root.join("real/mine"), &root.join("src/planted"));
        assert!(is_gone(&moved_out.unwrap_err()));
        assert_eq!(
            names(open_root(&outside).unwrap().as_fd()).unwrap(),
            vec!["secret"]
        );
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"host");

        // The same calls on real directories act.
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut open_in(&root, &root.join("real/mine"), OFlags::RDONLY).unwrap(),
            &mut text,
        )
        .unwrap();
        assert_eq!(text, "mine");
        rename_in(&root, &root.join("real/mine"), &root.join("real/moved")).unwrap();
        assert!(!remove_in(&root, &root.join("real/moved")).unwrap());
        assert!(remove_in(&root, &root.join("real")).unwrap());
        assert!(!root.join("real").exists());
    }

    #[test]
    fn a_seeded_path_is_given_over_and_a_link_on_it_is_not_followed() {
        let (_base, root, outside) = workspace_and_outside();
        std::fs::create_dir_all(root.join(".cache/opencode")).unwrap();
        std::fs::write(root.join(".cache/opencode/c.json"), "{}").unwrap();
        std::fs::write(root.join("other"), "untouched").unwrap();
        std::fs::write(outside.join("c.json"), "host").unwrap();
        let me = std::fs::metadata(&root).unwrap().uid();
        let uid = me + 4242;

        give_path(&root, ".cache/opencode/c.json", uid).unwrap();
        for given in [".cache", ".cache/opencode", ".cache/opencode/c.json"] {
            assert_eq!(
                std::fs::metadata(root.join(given)).unwrap().uid(),
                uid,
                "{given}"
            );
        }
        assert_eq!(std::fs::metadata(root.join("other")).unwrap().uid(), me);

        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        give_path(&root, "link/c.json", uid).unwrap();
        assert_eq!(std::fs::metadata(outside.join("c.json")).unwrap().uid(), me);
        assert_eq!(std::fs::metadata(&outside).unwrap().uid(), me);
    }
}
