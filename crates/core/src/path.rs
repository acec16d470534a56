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
    /// A bidi control, a zero-width or another invisible format character: names that
    /// display as something they are not.
    #[error("path contains an invisible or bidirectional control character")]
    InvisibleCharacter,
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
            Self::InvisibleCharacter => "invisible_character",
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
        if raw.chars().any(is_invisible) {
            return Err(PathError::InvisibleCharacter);
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
        if let Some(dir) = parts.iter().find(|p| is_blocked_dir(p)) {
            return Err(PathError::Blocked(format!("{dir}/")));
        }
        if is_blocked_file(file_name) {
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

impl std::ops::Deref for DraftPath {
    type Target = str;

    /// A checked path reads as the text it is.
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for DraftPath {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for DraftPath {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
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

/// A name as a case-insensitive file system (or Windows, which drops trailing dots and
/// spaces) sees it: `.GIT.` and `.git ` are `.git`. An ASCII name (nearly every one) is
/// borrowed and compared without case; any other is lowered whole, since characters such
/// as the Kelvin sign lower to ASCII letters.
fn folded(name: &str) -> Folded<'_> {
    let name = name.trim_end_matches(['.', ' ']);
    if name.is_ascii() {
        Folded::Ascii(name)
    } else {
        Folded::Lowered(name.to_lowercase())
    }
}

enum Folded<'a> {
    Ascii(&'a str),
    Lowered(String),
}

impl Folded<'_> {
    fn is(&self, lower: &str) -> bool {
        match self {
            Self::Ascii(name) => name.eq_ignore_ascii_case(lower),
            Self::Lowered(name) => name == lower,
        }
    }

    fn ends_with(&self, lower: &str) -> bool {
        match self {
            Self::Ascii(name) => name
                .len()
                .checked_sub(lower.len())
                .and_then(|at| name.get(at..))
                .is_some_and(|end| end.eq_ignore_ascii_case(lower)),
            Self::Lowered(name) => name.ends_with(lower),
        }
    }
}

/// Whether a directory name is one drafts never hold, compared without case and without
/// trailing dots or spaces (`.GIT`, `Node_Modules`, `.git.` are all blocked).
pub fn is_blocked_dir(name: &str) -> bool {
    let name = folded(name);
    BLOCKED_DIRS.iter().any(|d| name.is(d))
}

/// Whether a file name is a generated file drafts never hold, compared like
/// [`is_blocked_dir`].
pub fn is_blocked_file(name: &str) -> bool {
    let name = folded(name);
    BLOCKED_FILE_NAMES.iter().any(|f| name.is(f))
        || BLOCKED_FILE_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Characters that change how a name displays without being seen: bidi embeddings,
/// overrides and isolates, zero-width characters and joiners, word joiners and invisible
/// operators, the BOM, and the other format (Cf) characters and fillers of Unicode.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{0600}'..='\u{0605}' | '\u{06DD}'
        | '\u{070F}' | '\u{08E2}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}' | '\u{110BD}' | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
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
        // Close to a blocked name is not a blocked name; visible non-ASCII is fine.
        assert_eq!(ok(".github/ci.yml"), Ok(".github/ci.yml".into()));
        assert_eq!(ok("gitx/.gitkeep"), Ok("gitx/.gitkeep".into()));
        assert_eq!(ok("docs/café ü.md"), Ok("docs/café ü.md".into()));
        assert_eq!(ok("src/日本語.js"), Ok("src/日本語.js".into()));
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
            // Case and trailing dots or spaces do not get around the blocked directories.
            (".GIT/hooks/pre-commit", "blocked_directory"),
            (".Git/config", "blocked_directory"),
            ("Node_Modules/x.js", "blocked_directory"),
            (".git /config", "blocked_directory"),
            (".git./config", "blocked_directory"),
            (".git. . /config", "blocked_directory"),
            ("src/DIST/x.js", "blocked_directory"),
            ("a.TSBUILDINFO", "blocked_directory"),
            (".ESLintCache.", "blocked_directory"),
            // Names that display as something else.
            ("src/\u{202E}txt.js", "invisible_character"),
            ("\u{202A}a.js", "invisible_character"),
            ("\u{2066}a.js", "invisible_character"),
            ("\u{2069}a.js", "invisible_character"),
            ("a\u{200B}.js", "invisible_character"),
            ("a\u{200D}.js", "invisible_character"),
            ("a\u{200F}.js", "invisible_character"),
            ("a\u{2060}.js", "invisible_character"),
            ("\u{FEFF}index.html", "invisible_character"),
            ("a\u{00AD}b.js", "invisible_character"),
            ("a\u{E0041}.js", "invisible_character"),
            (".gi\u{200B}t/config", "invisible_character"),
        ];
        for (raw, reason) in cases {
            let err = DraftPath::parse(raw).err().map(|e| e.reason());
            assert_eq!(err, Some(*reason), "{raw:?}");
        }
        assert_eq!(DraftPath::parse(&"a".repeat(2000)), Err(PathError::TooLong));
        assert_eq!(DraftPath::parse(&"a".repeat(300)), Err(PathError::TooLong));
    }
}
