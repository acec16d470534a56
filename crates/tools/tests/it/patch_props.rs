//! Properties of `apply_patch` over random files and patches: a patch either applies and gives
//! exactly the expected content, or fails and leaves the workspace byte-identical.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;

use crate::common::{Sandbox, call_json, snapshot};

/// Lines drawn from a small pool, so repeated context (and ambiguity) is common.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["{", "}", "  return 1;", "", "fn x() {", "a", "b"]).prop_map(str::to_owned),
        5 => "[a-z]{1,6}( [a-z\u{e9}\u{2014}]{1,4})?",
    ]
}

#[derive(Debug, Clone)]
struct File {
    lines: Vec<String>,
    crlf: bool,
    trailing_newline: bool,
}

impl File {
    fn render(lines: &[String], crlf: bool, trailing_newline: bool) -> String {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text = lines.join(eol);
        if trailing_newline && !lines.is_empty() {
            text.push_str(eol);
        }
        text
    }
}

fn file() -> impl Strategy<Value = File> {
    (
        prop::collection::vec(line(), 1..30),
        any::<bool>(),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(lines, crlf, trailing_newline)| {
            // Without a final newline a last empty line would not exist on disk.
            let trailing_newline = trailing_newline || lines.last().is_some_and(String::is_empty);
            // A file with no line ending at all is taken as LF.
            let crlf = crlf && (trailing_newline || lines.len() > 1);
            File {
                lines,
                crlf,
                trailing_newline,
            }
        })
}

/// One edit: replace `len` lines at `start` (fractions of the file) with `new`, with context.
#[derive(Debug, Clone)]
struct Edit {
    start: f64,
    len: usize,
    new: Vec<String>,
    before: usize,
    after: usize,
}

fn edit() -> impl Strategy<Value = Edit> {
    (
        0.0..1.0f64,
        0..4usize,
        prop::collection::vec(line(), 0..4),
        0..4usize,
        0..4usize,
    )
        .prop_map(|(start, len, new, before, after)| Edit {
            start,
            len,
            new,
            before,
            after,
        })
}

/// How a valid patch is broken.
#[derive(Debug, Clone, Copy)]
enum Corruption {
    None,
    UnknownContext,
    NoEnd,
    BadHeader,
    MissingFile,
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        6 => Just(Corruption::None),
        1 => Just(Corruption::UnknownContext),
        1 => Just(Corruption::NoEnd),
        1 => Just(Corruption::BadHeader),
        1 => Just(Corruption::MissingFile),
    ]
}

/// The oracle's lines after a hunk, and where the next hunk may start.
type Applied = (Vec<String>, usize);

/// Builds the hunk text for `edit` on `lines` and, with the oracle, the lines after it.
/// The oracle: the hunk's old lines must occur exactly once at or after `cursor`.
fn hunk(lines: &[String], cursor: usize, edit: &Edit) -> Option<(String, Option<Applied>)> {
    let n = lines.len();
    if cursor >= n {
        return None;
    }
    let start = cursor + ((edit.start * (n - cursor) as f64) as usize).min(n - cursor - 1);
    let len = edit.len.min(n - start);
    let ctx_start = start.saturating_sub(edit.before).max(cursor);
    let ctx_end = (start + len + edit.after).min(n);
    let mut old: Vec<&String> = lines[ctx_start..ctx_end].iter().collect();
    let mut text = String::from("@@\n");
    for l in &lines[ctx_start..start] {
        text.push_str(&format!(" {l}\n"));
    }
    for l in &lines[start..start + len] {
        text.push_str(&format!("-{l}\n"));
    }
    for l in &edit.new {
        text.push_str(&format!("+{l}\n"));
    }
    for l in &lines[start + len..ctx_end] {
        text.push_str(&format!(" {l}\n"));
    }
    if old.is_empty() {
        // A hunk needs something to anchor on; use the line at `start` as context.
        old.push(&lines[start]);
        text = format!("@@\n {}\n{}", lines[start], &text[3..]);
        let places = occurrences(lines, cursor, &old);
        let result = (places.len() == 1).then(|| {
            let mut out = lines.to_vec();
            out.splice(start + 1..start + 1, edit.new.iter().cloned());
            (out, start + 1 + edit.new.len())
        });
        return Some((text, result));
    }
    let places = occurrences(lines, cursor, &old);
    let result = (places.len() == 1).then(|| {
        let mut new_block: Vec<String> = lines[ctx_start..start].to_vec();
        new_block.extend(edit.new.iter().cloned());
        new_block.extend(lines[start + len..ctx_end].iter().cloned());
        let end = ctx_start + new_block.len();
        let mut out = lines.to_vec();
        out.splice(ctx_start..ctx_end, new_block);
        (out, end)
    });
    Some((text, result))
}

fn occurrences(lines: &[String], from: usize, old: &[&String]) -> Vec<usize> {
    (from..=lines.len().saturating_sub(old.len()))
        .filter(|p| old.iter().zip(&lines[*p..]).all(|(a, b)| *a == b))
        .collect()
}

fn tree(ws: &std::path::Path) -> BTreeMap<String, String> {
    snapshot(ws)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn applies_exactly_or_changes_nothing(
        files in prop::collection::vec((file(), prop::collection::vec(edit(), 1..3)), 1..4),
        corrupt in corruption(),
    ) {
        let sandbox = Sandbox::new();
        let mut patch = String::from("*** Begin Patch\n");
        let mut expected = BTreeMap::new();
        let mut ok = true;
        for (index, (file, edits)) in files.iter().enumerate() {
            let name = format!("f{index}.txt");
            sandbox.put(&name, &File::render(&file.lines, file.crlf, file.trailing_newline));
            let header = match corrupt {
                Corruption::MissingFile if index == 0 => "*** Update File: missing.txt".to_owned(),
                Corruption::BadHeader if index == 0 => format!("*** Change File: {name}"),
                _ => format!("*** Update File: {name}"),
            };
            patch.push_str(&header);
            patch.push('\n');
            let (mut lines, mut cursor) = (file.lines.clone(), 0);
            let mut wrote_hunk = false;
            for edit in edits {
                let Some((text, result)) = hunk(&lines, cursor, edit) else { break };
                patch.push_str(&text);
                wrote_hunk = true;
                match result {
                    Some((after, end)) => { lines = after; cursor = end; }
                    None => { ok = false; break; }
                }
            }
            if !wrote_hunk {
                patch.push_str(&format!("@@\n {}\n", file.lines[0]));
            }
            if matches!(corrupt, Corruption::UnknownContext) && index == 0 {
                patch.push_str("@@\n zzz-not-in-any-file\n-zzz-either\n");
            }
            let trailing = file.trailing_newline || lines.is_empty();
            expected.insert(name, File::render(&lines, file.crlf, trailing));
        }
        if !matches!(corrupt, Corruption::NoEnd) {
            patch.push_str("*** End Patch\n");
        }
        let must_fail = !ok || !matches!(corrupt, Corruption::None);
        let before = tree(&sandbox.ws());
        let outcome = call_json(&sandbox.ctx(), "apply_patch", json!({"patch": patch}));
        if must_fail {
            prop_assert!(!outcome.is_ok(), "should fail: {}\n{patch}", outcome.output);
            prop_assert_eq!(tree(&sandbox.ws()), before);
        } else {
            prop_assert!(outcome.is_ok(), "should apply: {}\n{patch}", outcome.output);
            for (name, content) in &expected {
                let actual = sandbox.get(name);
                prop_assert_eq!(actual.as_deref(), Some(content.as_str()), "{}\n{}", name, patch);
            }
        }
    }

    #[test]
    fn random_patch_text_never_panics(text in "(\\*\\*\\* (Begin|End) Patch\n|\\*\\*\\* (Add|Update|Delete) File: [a-z]{1,3}\n|@@[ a-z]{0,4}\n|[ +-][a-z]{0,3}\n|\\*\\*\\* End of File\n){0,12}") {
        let _ = draftsmith_tools::patch::parse_patch(&text);
    }
}
