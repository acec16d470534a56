//! HTTP caching and ranges for published files: `Cache-Control` by name (hashed names are
//! immutable), `If-None-Match`, `If-Range` and one `bytes=` range (RFC 9110).

use axum::http::{HeaderMap, header};

/// Hashed asset names never change content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub(super) fn cache_control(path: &str, private: bool) -> String {
    let scope = if private { "private" } else { "public" };
    if hashed_name(path) {
        IMMUTABLE.replacen("public", scope, 1)
    } else {
        format!("{scope}, no-cache")
    }
}

/// A bundler's content-hashed name, such as `index-BxK3c9aQ.js`: a final `-` or `.`
/// segment of 8+ word characters with a digit or an upper-case letter, before the extension.
pub(super) fn hashed_name(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    if ext.is_empty() {
        return false;
    }
    let looks_hashed = |hash: &str| {
        hash.len() >= 8
            && hash.len() < stem.len()
            && hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && hash
                .bytes()
                .any(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    };
    let hash = stem.rsplit(['-', '.']).next().unwrap_or("");
    // Vite's `[name]-[hash]` hash is 8 base64url characters, which may hold a `-` itself.
    let vite = stem.len() > 9
        && stem.as_bytes()[stem.len() - 9] == b'-'
        && stem.is_char_boundary(stem.len() - 8)
        && looks_hashed(&stem[stem.len() - 8..].replace('-', "_"));
    looks_hashed(hash) || vite
}

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
