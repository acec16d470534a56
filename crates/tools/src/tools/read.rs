//! `read`: a bounded slice of a text file by line numbers, with the file's total line count.

use std::io::{BufRead, BufReader};

use rustix::fs::OFlags;

use serde_json::json;

use super::Done;
use super::walk::looks_binary;
use crate::beneath;
use crate::context::ToolContext;
use crate::error::ToolError;
use crate::fsio::{changed_on_the_way, io_failed};
use crate::input::ReadInput;
use crate::policy::{canonical_root, parse_lexical, resolve_for_read};

/// Reads lines `start_line..=end_line` of `input.path`, up to the byte bound.
pub(crate) fn run(ctx: &ToolContext, input: ReadInput) -> Result<Done, ToolError> {
    let start = input.start_line.unwrap_or(1);
    if let Some(end) = input.end_line
        && end < start
    {
        return Err(ToolError::input(
            Some("end_line"),
            format!("end_line {end} is before start_line {start}"),
        ));
    }
    let shown = parse_lexical(&input.path)?.into_string();
    let root = canonical_root(&ctx.workspace)?;
    let path = resolve_for_read(&root, &input.path)?;
    let file = beneath::open_in(&root, &path, OFlags::RDONLY).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ToolError::failed(format!("{shown} does not exist")),
        _ => changed_on_the_way(&shown, &e),
    })?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(ToolError::failed(format!(
            "{shown} is a directory; use list to see what it holds"
        )));
    }
    let mut reader = BufReader::new(file);
    if looks_binary(
        reader
            .fill_buf()
            .map_err(|e| io_failed("read", &shown, &e))?,
    ) {
        return Err(ToolError::failed(format!("{shown} is a binary file")));
    }
    let slice = collect(
        &mut reader,
        start,
        input.end_line,
        ctx.limits.max_read_bytes,
    )
    .map_err(|e| io_failed("read", &shown, &e))?;
    if start > 1 && start > slice.total_lines {
        return Err(ToolError::failed(format!(
            "start_line {start} is past the end of {shown}, which has {} lines",
            slice.total_lines
        )));
    }
    let mut result = json!({
        "path": shown,
        "content": slice.content,
        "start_line": start,
        "end_line": slice.last_line,
        "total_lines": slice.total_lines,
        "truncated": slice.next_line.is_some(),
    });
    if let (Some(next), Some(map)) = (slice.next_line, result.as_object_mut()) {
        map.insert("next_start_line".into(), json!(next));
    }
    Ok(Done {
        result,
        paths: vec![shown],
    })
}

struct Slice {
    content: String,
    last_line: u64,
    total_lines: u64,
    /// Where to continue when the byte bound cut the requested range short.
    next_line: Option<u64>,
}

fn collect(
    reader: &mut impl BufRead,
    start: u64,
    end: Option<u64>,
    max_bytes: usize,
) -> std::io::Result<Slice> {
    let mut content = Vec::new();
    let mut line = Vec::new();
    let (mut number, mut last_line, mut next_line) = (0u64, start.saturating_sub(1), None);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        let wanted = number >= start && end.is_none_or(|e| number <= e);
        if !wanted || next_line.is_some() {
            continue;
        }
        if content.len() + line.len() > max_bytes {
            if content.is_empty() {
                // A single huge line: give what fits and say where it was cut.
                content.extend_from_slice(&line[..max_bytes]);
                content.extend_from_slice(b"\n[line truncated]\n");
                last_line = number;
                next_line = Some(number + 1);
            } else {
                next_line = Some(number);
            }
            continue;
        }
        content.extend_from_slice(&line);
        last_line = number;
    }
    Ok(Slice {
        content: String::from_utf8_lossy(&content).into_owned(),
        last_line,
        total_lines: number,
        next_line: next_line.filter(|n| *n <= number),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn slices_and_bounds() {
        let text = b"one\ntwo\nthree\nfour";
        let s = collect(&mut &text[..], 2, Some(3), 100).unwrap();
        assert_eq!(
            (s.content.as_str(), s.last_line, s.total_lines),
            ("two\nthree\n", 3, 4)
        );
        let s = collect(&mut &text[..], 1, None, 9).unwrap();
        assert_eq!((s.content.as_str(), s.next_line), ("one\ntwo\n", Some(3)));
        let s = collect(&mut &text[..], 4, None, 100).unwrap();
        assert_eq!((s.content.as_str(), s.next_line), ("four", None));
    }
}
