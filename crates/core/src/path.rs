//! The lexical half of the path policy (SPEC §6): every path a draft or a tool writes is
//! relative, normalised and outside version-control, dependency and generated directories.
//! Symlink checks need the file system and live with the workspace code.

use serde::{Serialize, Serializer};

/// Longest accepted path in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest accepted path component in bytes (the usual file-system limit).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Directories never stored in a draft and never written by a tool, wherever they appear.
pub const BLOCKED_DIRS: &[&str] = &[
    ".git",
    "node_modules",
    "dist",
    ".vite",
    ".turbo",
    ".cache",
    ".parcel-cache",
    ".npm",
    ".pnpm-store",
    ".yarn",
];

/// Generated files never stored in a draft, matched on the file name.
pub const BLOCKED_FILE_NAMES: &[&str] = &[".eslintcache", ".stylelintcache"];
/// Generated file suffixes never stored in a draft.
pub const BLOCKED_FILE_SUFFIXES: &[&str] = &[".tsbuildinfo"];

/// Why a path was refused; each is reported as `CODING_AGENT_PATH_BLOCKED` with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Nothing left after normalisation.
    #[error("path is empty")]
    Empty,
    /// Over [`MAX_PATH_BYTES`] or a component over [`MAX_COMPONENT_BYTES`].
    #[error("path is too long")]
    TooLong,
    /// NUL, another control character, or a backslash.
    #[error("path contains a forbidden character")]
    ForbiddenCharacter,
    /// Starts at the root or a drive.
    #[error("path must be relative to the app's root")]
    Absolute,
    /// Contains a `..` component.
    #[error("path must not contain '..'")]
    ParentDir,
    /// Lies in a blocked directory or names a generated file.
    #[error("path is inside '{0}', which drafts never hold")]
    Blocked(String),
}

impl PathError {
    /// Short stable reason, sent in `details.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLong => "too_long",
            Self::ForbiddenCharacter => "forbidden_character",
            Self::Absolute => "absolute",
            Self::ParentDir => "parent_dir",
            Self::Blocked(_) => "blocked_directory",
        }
    }
}

/// A path that passed the policy: `/`-separated, no empty, `.` or `..` components.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DraftPath(String);

impl DraftPath {
    /// Validates and normalises `raw` (`./a//b` becomes `a/b`).
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        if raw.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        if raw.chars().any(|c| c.is_control() || c == '\\') {
            return Err(PathError::ForbiddenCharacter);
        }
        if raw.starts_with('/') || raw.starts_with('~') || has_drive_prefix(raw) {
            return Err(PathError::Absolute);
        }
        let mut parts = Vec::new();
        for part in raw.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(PathError::ParentDir),
                p if p.len() > MAX_COMPONENT_BYTES => return Err(PathError::TooLong),
                p => parts.push(p),
            }
        }
        let Some(file_name) = parts.last() else {
            return Err(PathError::Empty);
        };
        if let Some(dir) = parts.iter().find(|p| BLOCKED_DIRS.contains(p)) {
            return Err(PathError::Blocked(format!("{dir}/")));
        }
        if BLOCKED_FILE_NAMES.contains(file_name)
            || BLOCKED_FILE_SUFFIXES.iter().any(|s| file_name.ends_with(s))
        {
            return Err(PathError::Blocked((*file_name).to_owned()));
        }
        Ok(Self(parts.join("/")))
    }

    /// The normalised path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the path into its string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for DraftPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for DraftPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

fn has_drive_prefix(raw: &str) -> bool {
    let b = raw.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_harmless_forms() {
        let ok = |raw: &str| DraftPath::parse(raw).map(DraftPath::into_string);
        assert_eq!(ok("src/App.jsx"), Ok("src/App.jsx".into()));
        assert_eq!(ok("./src//App.jsx/"), Ok("src/App.jsx".into()));
        assert_eq!(
            ok(".opencode/tools/x.ts"),
            Ok(".opencode/tools/x.ts".into())
        );
        assert_eq!(ok("distance/notes.md"), Ok("distance/notes.md".into()));
    }

    #[test]
    fn refuses_hostile_forms() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("./", "empty"),
            ("/etc/passwd", "absolute"),
            ("C:/x", "absolute"),
            ("~/x", "absolute"),
            ("../x", "parent_dir"),
            ("a/../../x", "parent_dir"),
            ("a\\..\\x", "forbidden_character"),
            ("a\0b", "forbidden_character"),
            ("a\nb", "forbidden_character"),
            (".git/config", "blocked_directory"),
            ("sub/.git/HEAD", "blocked_directory"),
            ("node_modules/x/index.js", "blocked_directory"),
            ("dist/index.html", "blocked_directory"),
            (".cache/x", "blocked_directory"),
            ("tsconfig.tsbuildinfo", "blocked_directory"),
            (".eslintcache", "blocked_directory"),
        ];
        for (raw, reason) in cases {
            let err = DraftPath::parse(raw).err().map(|e| e.reason());
            assert_eq!(err, Some(*reason), "{raw:?}");
        }
        assert_eq!(DraftPath::parse(&"a".repeat(2000)), Err(PathError::TooLong));
        assert_eq!(DraftPath::parse(&"a".repeat(300)), Err(PathError::TooLong));
    }
}
