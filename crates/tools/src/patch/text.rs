//! Applies an update's hunks to a file's text in memory, keeping each line's own ending
//! (LF or CRLF) and whether the file ends with a newline.

use super::parser::{Hunk, HunkLine};
use super::report::{ambiguous, not_found};
use super::seek::{Found, Wanted, locate};

/// A hunk that does not apply, with a message that shows the model where to look.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hunk {hunk} (patch line {patch_line}) {message}")]
pub struct HunkError {
    /// 1-based index of the hunk within its file section.
    pub hunk: usize,
    /// 1-based patch line where the hunk starts.
    pub patch_line: usize,
    /// What went wrong, with the nearest text of the file.
    pub message: String,
}

/// A file as lines, each remembering its ending.
struct Lines {
    text: Vec<String>,
    crlf: Vec<bool>,
    trailing_newline: bool,
    mostly_crlf: bool,
}

impl Lines {
    fn split(content: &str) -> Self {
        let (mut text, mut crlf) = (Vec::new(), Vec::new());
        let mut trailing_newline = true;
        for piece in content.split_inclusive('\n') {
            if let Some(line) = piece.strip_suffix("\r\n") {
                text.push(line.to_owned());
                crlf.push(true);
            } else if let Some(line) = piece.strip_suffix('\n') {
                text.push(line.to_owned());
                crlf.push(false);
            } else {
                text.push(piece.to_owned());
                crlf.push(false);
                trailing_newline = false;
            }
        }
        let crlf_count = crlf.iter().filter(|c| **c).count();
        let mostly_crlf =
            crlf_count * 2 > crlf.len().saturating_sub(usize::from(!trailing_newline));
        if !trailing_newline && let Some(last) = crlf.last_mut() {
            *last = mostly_crlf;
        }
        Self {
            text,
            crlf,
            trailing_newline,
            mostly_crlf,
        }
    }

    fn join(&self) -> String {
        let mut out = String::new();
        let last = self.text.len().saturating_sub(1);
        for (index, (line, crlf)) in self.text.iter().zip(&self.crlf).enumerate() {
            out.push_str(line);
            if index < last || self.trailing_newline {
                out.push_str(if *crlf { "\r\n" } else { "\n" });
            }
        }
        out
    }
}

/// Applies `hunks` in order to `original`; the first hunk that does not apply stops it.
pub fn apply_hunks(original: &str, hunks: &[Hunk]) -> Result<String, HunkError> {
    let mut lines = Lines::split(original);
    let mut cursor = 0;
    for (index, hunk) in hunks.iter().enumerate() {
        let old: Vec<&str> = hunk
            .lines
            .iter()
            .filter_map(|l| match l {
                HunkLine::Context(t) | HunkLine::Remove(t) => Some(t.as_str()),
                HunkLine::Add(_) => None,
            })
            .collect();
        let wanted = Wanted {
            anchors: &hunk.anchors,
            old: &old,
            end_of_file: hunk.end_of_file,
        };
        let fail = |message: String| HunkError {
            hunk: index + 1,
            patch_line: hunk.patch_line,
            message,
        };
        let at = match locate(&lines.text, cursor, &wanted) {
            Found::At(at) => at,
            Found::Ambiguous(places) => return Err(fail(ambiguous(&places))),
            Found::AnchorMissing(a) => {
                return Err(fail(format!(
                    "did not apply: its @@ line {:?} was not found{}",
                    hunk.anchors[a],
                    after(cursor)
                )));
            }
            Found::NoMatch => return Err(fail(not_found(&lines.text, &old, cursor))),
        };
        let (mut text, mut crlf) = (Vec::new(), Vec::new());
        let mut file_at = at;
        for line in &hunk.lines {
            match line {
                HunkLine::Context(_) => {
                    text.push(lines.text[file_at].clone());
                    crlf.push(lines.crlf[file_at]);
                    file_at += 1;
                }
                HunkLine::Remove(_) => file_at += 1,
                HunkLine::Add(added) => {
                    text.push(added.clone());
                    crlf.push(lines.mostly_crlf);
                }
            }
        }
        cursor = at + text.len();
        // A file that ended without a newline keeps doing so, unless it was empty.
        if lines.text.is_empty() {
            lines.trailing_newline = true;
        }
        lines.text.splice(at..at + old.len(), text);
        lines.crlf.splice(at..at + old.len(), crlf);
    }
    Ok(lines.join())
}

fn after(cursor: usize) -> String {
    if cursor == 0 {
        String::new()
    } else {
        format!(" after line {cursor} (where the previous hunk ended)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::patch::parser::FileOp;
    use crate::patch::parser::parse_patch;

    fn apply(original: &str, body: &str) -> Result<String, HunkError> {
        let patch = parse_patch(&format!(
            "*** Begin Patch\n*** Update File: f\n{body}\n*** End Patch"
        ))
        .unwrap();
        let FileOp::Update { hunks, .. } = &patch.ops[0] else {
            panic!("not an update")
        };
        apply_hunks(original, hunks)
    }

    #[test]
    fn keeps_line_endings_and_final_newline() {
        assert_eq!(
            apply("a\r\nb\r\nc", "@@\n a\n-b\n+B\n+B2").unwrap(),
            "a\r\nB\r\nB2\r\nc"
        );
        assert_eq!(apply("a\nb", "@@\n a\n-b\n+c").unwrap(), "a\nc");
        assert_eq!(
            apply("a\nb\n", "@@\n b\n+c\n*** End of File").unwrap(),
            "a\nb\nc\n"
        );
        assert_eq!(apply("", "@@\n+x").unwrap(), "x\n");
    }
}
