//! Conditional and partial requests for published files: `If-None-Match`, `If-Range` and
//! one `bytes=` range (RFC 9110).

use axum::http::{HeaderMap, header};

pub(super) fn not_modified(
    headers: &HeaderMap,
    etag: &str,
    sha: &draftsmith_core::BlobHash,
) -> bool {
    let Some(wanted) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    wanted.split(',').map(str::trim).any(|tag| {
        let tag = tag.trim_start_matches("W/");
        tag == "*" || tag == etag || tag.trim_matches('"').starts_with(sha.as_str())
    })
}

pub(super) fn if_range_holds(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag)
}

pub(super) enum Range {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range of `total` bytes; several ranges, or a malformed header, are answered
/// with the whole file (RFC 9110 allows ignoring `Range`).
pub(super) fn range(headers: &HeaderMap, total: u64) -> Range {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Range::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let parsed = match (first.is_empty(), last.is_empty()) {
        (true, true) => return Range::Whole,
        (true, false) => match last.parse::<u64>() {
            Ok(0) => return Range::Unsatisfiable,
            Ok(n) => Some((total.saturating_sub(n), total.saturating_sub(1))),
            Err(_) => None,
        },
        (false, _) => match (first.parse::<u64>(), last.parse::<u64>()) {
            (Ok(a), Ok(b)) if a <= b => Some((a, b.min(total.saturating_sub(1)))),
            (Ok(a), Err(_)) if last.is_empty() => Some((a, total.saturating_sub(1))),
            _ => None,
        },
    };
    match parsed {
        None => Range::Whole,
        Some((a, _)) if total == 0 || a >= total => Range::Unsatisfiable,
        Some((a, b)) => Range::Part(a, b),
    }
}
