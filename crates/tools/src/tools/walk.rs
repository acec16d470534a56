//! One way to walk the workspace for `list`, `search` and `glob`: from the root so its
//! ignore files apply, never entering blocked directories, and never through a link. Each
//! directory is opened below the one before it with `O_NOFOLLOW`, so one that a sandboxed
//! process swaps for a symlink mid-walk is skipped, never listed from wherever it points.
//!
//! `.ignore` and `.gitignore` files apply as in git (and ripgrep, whose `ignore` crate
//! compiles them): a file's rules cover its directory and everything below it, the deepest
//! file with a rule for a path decides (its last matching rule, `!` re-including), and
//! `.ignore` decides before `.gitignore`. They are read the same way, only as regular files
//! (never through a link to a host file, never a FIFO that would hang the walk), and each
//! distinct content is compiled once for the process: an agent lists the same workspace at
//! most steps, where compiling its rules again took about a third of each `list`.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};

use draftsmith_core::path::{MAX_PATH_BYTES, is_blocked_dir, is_blocked_file};
use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use tokio_util::sync::CancellationToken;

use crate::beneath;
use crate::error::ToolError;
use crate::fsio::changed_on_the_way;

/// The ignore files read in each directory, in the order they decide.
const IGNORE_FILES: [&str; 2] = [".ignore", ".gitignore"];
/// An ignore file larger than this is not read (no workspace needs one this large).
const MAX_IGNORE_BYTES: u64 = 1 << 20;
/// Distinct ignore-file contents kept compiled; the cache starts over when full.
const CACHED_RULES: usize = 256;
/// The largest ignore file kept compiled (a typical one is a few hundred bytes): a sandbox
/// writing many large ones costs its own walks, never the service's memory.
const MAX_CACHED_BYTES: usize = 16 << 10;

/// Compiled rules by the bytes they were compiled from.
static COMPILED: LazyLock<Mutex<HashMap<Vec<u8>, Arc<Gitignore>>>> = LazyLock::new(Mutex::default);

/// A walk of `target` (a directory inside `root`) down to `depth` levels below it.
pub(crate) struct Walk<'a> {
    root: &'a Path,
    target: &'a Path,
    depth: Option<usize>,
}

/// An entry the walk met: a directory, a regular file, or anything else (a symlink, …).
pub(crate) struct Entry {
    kind: FileType,
}

impl Entry {
    pub(crate) fn is_dir(&self) -> bool {
        self.kind == FileType::Directory
    }

    pub(crate) fn is_file(&self) -> bool {
        self.kind == FileType::RegularFile
    }
}

/// The rules of one directory's ignore files, for paths relative to it.
struct Rules {
    /// The directory, relative to the workspace (empty for the root).
    dir: String,
    /// Per ignore file, in [`IGNORE_FILES`] order.
    files: [Option<Arc<Gitignore>>; 2],
}

impl<'a> Walk<'a> {
    /// Walks `target`, which must be `root` or below it (both canonical).
    pub(crate) fn new(root: &'a Path, target: &'a Path, depth: Option<usize>) -> Self {
        Self {
            root,
            target,
            depth,
        }
    }

    /// Calls `visit` with each entry below the target and its workspace-relative path, in
    /// name order (a directory before what it holds), until it returns `false`; stops with
    /// an error when `cancel` fires.
    pub(crate) fn run(
        &self,
        cancel: &CancellationToken,
        mut visit: impl FnMut(&Entry, &str) -> bool,
    ) -> Result<(), ToolError> {
        let target = self
            .target
            .strip_prefix(self.root)
            .ok()
            .and_then(Path::to_str)
            .ok_or_else(|| ToolError::failed("the directory is outside the workspace"))?;
        let shown = if target.is_empty() { "." } else { target };
        let way = |e: std::io::Error| changed_on_the_way(shown, &e);
        let mut dir = beneath::open_root(self.root).map_err(way)?;
        let mut rules = Vec::new();
        let mut rel = String::new();
        // On the way down, the rules of each directory above the target apply below it,
        // and a directory they ignore (or a blocked one) holds nothing to show.
        for part in target.split('/').filter(|p| !p.is_empty()) {
            rules.extend(Rules::read(dir.as_fd(), &rel, |_| true));
            rel = join(&rel, part);
            if is_blocked_dir(part) || ignored(&rules, &rel, true) {
                return Ok(());
            }
            dir = beneath::open_dir(dir.as_fd(), part).map_err(way)?;
        }
        let mut walker = Walker {
            cancel,
            visit: &mut visit,
            rules,
            depth: self.depth,
        };
        walker.dir(dir.as_fd(), &rel, 1).map(drop)
    }
}

struct Walker<'w, F> {
    cancel: &'w CancellationToken,
    visit: &'w mut F,
    /// The rules of the directories from the root to the one being read.
    rules: Vec<Rules>,
    depth: Option<usize>,
}

impl<F: FnMut(&Entry, &str) -> bool> Walker<'_, F> {
    /// Visits what the directory `fd` (at `rel`) holds, its entries `level` below the
    /// target; `false` once the visitor stopped the walk.
    fn dir(&mut self, fd: BorrowedFd<'_>, rel: &str, level: usize) -> Result<bool, ToolError> {
        if self.depth.is_some_and(|depth| level > depth) {
            return Ok(true);
        }
        // A directory that cannot be read (gone, or not one any more) holds nothing.
        let Ok(entries) = entries(fd) else {
            return Ok(true);
        };
        let listed = |name: &str| {
            entries
                .binary_search_by(|(entry, _)| entry.as_str().cmp(name))
                .is_ok_and(|at| entries[at].1 == FileType::RegularFile)
        };
        let own = Rules::read(fd, rel, listed);
        let pushed = own.is_some();
        self.rules.extend(own);
        let going = self.entries(fd, rel, level, &entries);
        if pushed {
            self.rules.pop();
        }
        going
    }

    fn entries(
        &mut self,
        fd: BorrowedFd<'_>,
        rel: &str,
        level: usize,
        entries: &[(String, FileType)],
    ) -> Result<bool, ToolError> {
        for (name, kind) in entries {
            if self.cancel.is_cancelled() {
                return Err(ToolError::failed("the run was cancelled"));
            }
            let entry = Entry { kind: *kind };
            let blocked = if entry.is_dir() {
                is_blocked_dir(name)
            } else {
                is_blocked_file(name)
            };
            let path = join(rel, name);
            if blocked || ignored(&self.rules, &path, entry.is_dir()) {
                continue;
            }
            if !(self.visit)(&entry, &path) {
                return Ok(false);
            }
            // Nothing below a path this long can be a draft path; not entering it also
            // bounds the descriptors and stack a walk holds (see `beneath::MAX_DEPTH`).
            let deeper = self.depth.is_none_or(|depth| level < depth);
            if entry.is_dir() && deeper && path.len() <= MAX_PATH_BYTES {
                // Swapped for a link (or gone) since it was listed: skipped.
                let Ok(sub) = beneath::open_dir(fd, name) else {
                    continue;
                };
                if !self.dir(sub.as_fd(), &path, level + 1)? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

impl Rules {
    /// The rules of the ignore files in the directory `fd` (at `dir`), if it has any.
    /// Only the names `present` allows are opened (a listed directory says which it holds).
    fn read(fd: BorrowedFd<'_>, dir: &str, present: impl Fn(&str) -> bool) -> Option<Self> {
        let files = IGNORE_FILES.map(|name| present(name).then(|| read_rules(fd, name))?);
        files.iter().any(Option::is_some).then(|| Self {
            dir: dir.to_owned(),
            files,
        })
    }
}

/// Whether the rules ignore `path` (workspace-relative): per ignore file name, the deepest
/// directory with a rule for it decides, and the first name that decides wins.
fn ignored(rules: &[Rules], path: &str, is_dir: bool) -> bool {
    for i in 0..IGNORE_FILES.len() {
        for layer in rules.iter().rev() {
            let Some(file) = &layer.files[i] else {
                continue;
            };
            let below = if layer.dir.is_empty() {
                path
            } else {
                path.strip_prefix(layer.dir.as_str())
                    .and_then(|p| p.strip_prefix('/'))
                    .unwrap_or(path)
            };
            match file.matched(below, is_dir) {
                Match::None => {}
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
            }
        }
    }
    false
}

/// The compiled rules of the ignore file `name` in the directory `fd`: none when it is
/// missing, not a regular file, unreadable or too large.
fn read_rules(fd: BorrowedFd<'_>, name: &str) -> Option<Arc<Gitignore>> {
    // Non-blocking, so a FIFO in its place cannot hang the open; refused below.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file: OwnedFd = rustix::fs::openat(fd, name, flags, Mode::empty()).ok()?;
    let stat = rustix::fs::fstat(&file).ok()?;
    let size = u64::try_from(stat.st_size).ok()?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile || size > MAX_IGNORE_BYTES {
        return None;
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).ok()?);
    File::from(file)
        .take(MAX_IGNORE_BYTES)
        .read_to_end(&mut bytes)
        .ok()?;
    if let Some(rules) = compiled().get(&bytes) {
        return Some(rules.clone());
    }
    // Compiled outside the lock: a large file holds up only its own walk.
    let rules = Arc::new(compile(&bytes));
    if bytes.len() <= MAX_CACHED_BYTES {
        let mut compiled = compiled();
        if compiled.len() >= CACHED_RULES {
            compiled.clear();
        }
        compiled.insert(bytes, rules.clone());
    }
    Some(rules)
}

fn compiled() -> std::sync::MutexGuard<'static, HashMap<Vec<u8>, Arc<Gitignore>>> {
    COMPILED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Compiles an ignore file's lines for paths relative to its directory; a line that is no
/// valid glob is skipped, as git skips it.
fn compile(bytes: &[u8]) -> Gitignore {
    let mut builder = GitignoreBuilder::new("");
    for line in String::from_utf8_lossy(bytes).lines() {
        let _ = builder.add_line(None, line);
    }
    builder.build().unwrap_or_else(|_| Gitignore::empty())
}

/// The entries of the directory `fd` in name order, each with its type, never following a
/// link (one the directory does not type is looked at; one gone meanwhile is left out).
fn entries(fd: BorrowedFd<'_>) -> std::io::Result<Vec<(String, FileType)>> {
    let mut out = beneath::entries(fd)?;
    out.retain_mut(|(name, kind)| {
        if *kind != FileType::Unknown {
            return true;
        }
        match rustix::fs::statat(fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => {
                *kind = FileType::from_raw_mode(stat.st_mode);
                true
            }
            Err(_) => false,
        }
    });
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether the first bytes of a file look binary (contain NUL).
pub(crate) fn looks_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(8192).any(|b| *b == 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_directory_swapped_for_a_link_once_listed_is_not_entered() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("ws"), dir.path().join("outside"));
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/mine.txt"), "mine").unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("host.txt"), "host").unwrap();
        let mut seen = Vec::new();
        Walk::new(&root, &root, None)
            .run(&CancellationToken::new(), |entry, rel| {
                if rel == "a" && entry.is_dir() {
                    // What a sandboxed process racing the walk would do.
                    std::fs::remove_dir_all(root.join("a")).unwrap();
                    std::os::unix::fs::symlink(&outside, root.join("a")).unwrap();
                }
                seen.push(rel.to_owned());
                true
            })
            .unwrap();
        assert_eq!(seen, ["a"]);
    }

    #[test]
    fn only_small_ignore_files_are_kept_compiled() {
        let dir = tempfile::tempdir().unwrap();
        let fd = beneath::open_root(dir.path()).unwrap();
        let small = b"secret-small*\n".to_vec();
        let mut large = b"secret-large*\n".to_vec();
        large.extend(std::iter::repeat_n(b"# padding\n", 2_000).flatten());
        assert!(large.len() > MAX_CACHED_BYTES);
        for (content, kept) in [(small, true), (large, false)] {
            std::fs::write(dir.path().join(".gitignore"), &content).unwrap();
            let rules = read_rules(fd.as_fd(), ".gitignore").unwrap();
            let name = String::from_utf8_lossy(&content[..content.len().min(12)]).into_owned();
            assert!(rules.matched(format!("{name}.txt"), false).is_ignore());
            assert_eq!(compiled().contains_key(&content), kept);
        }
    }

    #[test]
    fn the_walk_stops_where_no_draft_path_reaches() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // 600 levels of `d/`: everything below the 512th is past `MAX_PATH_BYTES`.
        let bottom = root.join(vec!["d"; 600].join("/"));
        std::fs::create_dir_all(&bottom).unwrap();
        std::fs::write(bottom.join("deep.txt"), "deep").unwrap();
        let mut files = Vec::new();
        let mut deepest = 0;
        Walk::new(root, root, None)
            .run(&CancellationToken::new(), |entry, rel| {
                if entry.is_file() {
                    files.push(rel.to_owned());
                }
                deepest = deepest.max(rel.len());
                true
            })
            .unwrap();
        assert!(files.is_empty(), "{files:?}");
        assert!(
            (MAX_PATH_BYTES..MAX_PATH_BYTES + 3).contains(&deepest),
            "{deepest}"
        );
    }
}
