//! Parses the `*** Begin Patch` … `*** End Patch` format (as used by OpenAI codex) into file
//! operations and hunks; it knows nothing of files on disk.

/// A parsed patch: its file operations in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// What to do, file by file.
    pub ops: Vec<FileOp>,
}

/// One file section of a patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    /// `*** Add File:` — create a file that must not exist yet.
    Add {
        /// The path as written in the header.
        path: String,
        /// The new file's content (every line newline-terminated).
        content: String,
    },
    /// `*** Delete File:` — remove a file that must exist.
    Delete {
        /// The path as written in the header.
        path: String,
    },
    /// `*** Update File:` — change a file in place, optionally moving it.
    Update {
        /// The path as written in the header.
        path: String,
        /// The `*** Move to:` destination, when the file also moves.
        move_to: Option<String>,
        /// The changes, in file order.
        hunks: Vec<Hunk>,
    },
}

/// One change inside an updated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// Texts of the `@@ …` lines, each a line expected above the change, outermost first.
    pub anchors: Vec<String>,
    /// Context, removed and added lines in order.
    pub lines: Vec<HunkLine>,
    /// `*** End of File` followed: the hunk must match at the end of the file.
    pub end_of_file: bool,
    /// 1-based line of the patch where the hunk starts, for error messages.
    pub patch_line: usize,
}

/// One line of a hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HunkLine {
    /// ` text`: must be present, stays.
    Context(String),
    /// `-text`: must be present, goes.
    Remove(String),
    /// `+text`: is inserted.
    Add(String),
}

/// Why a patch could not be parsed, with the 1-based patch line at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// The patch line at fault.
    pub line: usize,
    /// What is wrong there.
    pub message: String,
}

const BEGIN: &str = "*** Begin Patch";
const END: &str = "*** End Patch";
const ADD: &str = "*** Add File:";
const DELETE: &str = "*** Delete File:";
const UPDATE: &str = "*** Update File:";
const MOVE: &str = "*** Move to:";
const END_OF_FILE: &str = "*** End of File";

/// Parses a whole patch; tolerates a heredoc wrapper and blank lines between sections.
pub fn parse_patch(text: &str) -> Result<Patch, ParseError> {
    let all: Vec<&str> = text.lines().collect();
    let mut first = all
        .iter()
        .position(|l| !l.trim_ascii().is_empty())
        .unwrap_or(0);
    let mut last = all
        .iter()
        .rposition(|l| !l.trim_ascii().is_empty())
        .unwrap_or(0);
    if first < last && is_heredoc_start(all[first]) && all[last].trim_ascii() == "EOF" {
        first += 1;
        last -= 1;
    }
    if all.get(first).map(|l| l.trim_ascii()) != Some(BEGIN) {
        return Err(err(first, format!("the patch must start with {BEGIN:?}")));
    }
    if last <= first || all[last].trim_ascii() != END {
        return Err(err(last, format!("the patch must end with {END:?}")));
    }
    let mut parser = Parser {
        lines: &all[..last],
        at: first + 1,
    };
    let mut ops = Vec::new();
    while let Some(line) = parser.peek() {
        if line.trim_ascii().is_empty() {
            parser.at += 1;
        } else {
            ops.push(parser.file_op()?);
        }
    }
    if ops.is_empty() {
        return Err(err(first, "the patch changes no file".to_owned()));
    }
    Ok(Patch { ops })
}

struct Parser<'a> {
    lines: &'a [&'a str],
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.lines.get(self.at).copied()
    }

    fn file_op(&mut self) -> Result<FileOp, ParseError> {
        let header = self.at;
        let line = self.lines[header].trim_ascii();
        self.at += 1;
        if let Some(path) = line.strip_prefix(ADD) {
            let path = header_path(header, ADD, path)?;
            return Ok(FileOp::Add {
                content: self.added_lines(&path)?,
                path,
            });
        }
        if let Some(path) = line.strip_prefix(DELETE) {
            let path = header_path(header, DELETE, path)?;
            return Ok(FileOp::Delete { path });
        }
        if let Some(path) = line.strip_prefix(UPDATE) {
            let path = header_path(header, UPDATE, path)?;
            let move_to = match self
                .peek()
                .map(str::trim_ascii)
                .and_then(|l| l.strip_prefix(MOVE))
            {
                Some(to) => {
                    let to = header_path(self.at, MOVE, to)?;
                    self.at += 1;
                    Some(to)
                }
                None => None,
            };
            let hunks = self.hunks(&path)?;
            if hunks.is_empty() && move_to.is_none() {
                return Err(err(header, format!("{UPDATE} {path} has no hunks")));
            }
            return Ok(FileOp::Update {
                path,
                move_to,
                hunks,
            });
        }
        Err(err(
            header,
            format!(
                "expected a file header ({ADD:?}, {DELETE:?} or {UPDATE:?}), found {:?}",
                shorten(line)
            ),
        ))
    }

    fn added_lines(&mut self, path: &str) -> Result<String, ParseError> {
        let mut content = String::new();
        while let Some(line) = self.peek() {
            if is_header(line) {
                break;
            }
            if let Some(text) = line.strip_prefix('+') {
                content.push_str(text);
                content.push('\n');
            } else if line.trim_ascii().is_empty() && self.only_blank_until_header() {
                break;
            } else {
                return Err(err(
                    self.at,
                    format!(
                        "every line of {ADD} {path} must start with '+', found {:?}",
                        shorten(line)
                    ),
                ));
            }
            self.at += 1;
        }
        Ok(content)
    }

    fn only_blank_until_header(&self) -> bool {
        self.lines[self.at..]
            .iter()
            .take_while(|l| !is_header(l))
            .all(|l| l.trim_ascii().is_empty())
    }

    fn hunks(&mut self, path: &str) -> Result<Vec<Hunk>, ParseError> {
        let mut hunks: Vec<Hunk> = Vec::new();
        let mut current: Option<Hunk> = None;
        // Bare blank lines at the end of the current hunk: separators unless a line follows.
        let mut bare_tail = 0;
        while let Some(line) = self.peek() {
            if is_header(line) {
                break;
            }
            let number = self.at;
            self.at += 1;
            if line.trim_ascii_end().starts_with("@@") {
                let anchor = anchor_text(line.trim_ascii());
                match current.as_mut() {
                    Some(h) if h.lines.is_empty() => h.anchors.extend(anchor),
                    _ => {
                        if let Some(done) = current.take() {
                            hunks.push(finish(done, bare_tail, path, hunks.len())?);
                        }
                        current = Some(new_hunk(anchor.into_iter().collect(), number));
                    }
                }
                bare_tail = 0;
                continue;
            }
            if line.trim_ascii() == END_OF_FILE {
                let Some(hunk) = current.as_mut().filter(|h| !h.lines.is_empty()) else {
                    return Err(err(number, format!("{END_OF_FILE:?} must close a hunk")));
                };
                hunk.end_of_file = true;
                bare_tail = 0;
                continue;
            }
            let hunk_line = match line.chars().next() {
                Some(' ') => HunkLine::Context(line[1..].to_owned()),
                Some('-') => HunkLine::Remove(line[1..].to_owned()),
                Some('+') => HunkLine::Add(line[1..].to_owned()),
                None => HunkLine::Context(String::new()),
                Some(_) => {
                    return Err(err(
                        number,
                        format!(
                            "unexpected line in {UPDATE} {path}: {:?}; hunk lines start with ' ', '-' or '+', and a hunk starts with '@@'",
                            shorten(line)
                        ),
                    ));
                }
            };
            let hunk = current.get_or_insert_with(|| new_hunk(Vec::new(), number));
            if hunk.end_of_file {
                if line.is_empty() {
                    continue;
                }
                return Err(err(
                    number,
                    format!("a new hunk after {END_OF_FILE:?} must start with '@@'"),
                ));
            }
            hunk.lines.push(hunk_line);
            bare_tail = if line.is_empty() { bare_tail + 1 } else { 0 };
        }
        if let Some(done) = current.take() {
            hunks.push(finish(done, bare_tail, path, hunks.len())?);
        }
        Ok(hunks)
    }
}

fn new_hunk(anchors: Vec<String>, index: usize) -> Hunk {
    Hunk {
        anchors,
        lines: Vec::new(),
        end_of_file: false,
        patch_line: index + 1,
    }
}

/// Drops the `bare_tail` trailing blank lines (separators), then refuses an empty hunk.
fn finish(mut hunk: Hunk, bare_tail: usize, path: &str, index: usize) -> Result<Hunk, ParseError> {
    let keep = hunk.lines.len().saturating_sub(bare_tail);
    hunk.lines.truncate(keep);
    if hunk.lines.is_empty() {
        return Err(err(
            hunk.patch_line - 1,
            format!("hunk {} of {UPDATE} {path} is empty", index + 1),
        ));
    }
    Ok(hunk)
}

/// The anchor text of an `@@` line; `@@ -1,3 +1,4 @@ fn x` (unified-diff style) yields `fn x`.
fn anchor_text(line: &str) -> Option<String> {
    let rest = line.strip_prefix("@@")?.trim_ascii();
    let rest = match rest.strip_prefix('-') {
        Some(after) if after.starts_with(|c: char| c.is_ascii_digit()) => match after.find("@@") {
            Some(end) => after[end + 2..].trim_ascii(),
            None => rest,
        },
        _ => rest,
    };
    (!rest.is_empty()).then(|| rest.to_owned())
}

fn header_path(line: usize, header: &str, rest: &str) -> Result<String, ParseError> {
    let path = rest.trim_ascii();
    if path.is_empty() {
        return Err(err(line, format!("{header:?} needs a path")));
    }
    Ok(path.to_owned())
}

fn is_header(line: &str) -> bool {
    let line = line.trim_ascii_end();
    [ADD, DELETE, UPDATE, END, BEGIN]
        .iter()
        .any(|h| line.starts_with(h))
}

fn is_heredoc_start(line: &str) -> bool {
    let line = line.trim_ascii();
    ["<<EOF", "<<'EOF'", "<<\"EOF\""]
        .iter()
        .any(|h| line.ends_with(h))
}

fn err(index: usize, message: String) -> ParseError {
    ParseError {
        line: index + 1,
        message,
    }
}

fn shorten(line: &str) -> String {
    match line.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}
