//! Tolerant line matching: where in a file a hunk applies. Each level is looser than the last
//! (exact, trailing whitespace, surrounding whitespace, Unicode look-alike punctuation); the
//! first level that finds anything decides, and more than one place is an error, never a guess.

use std::borrow::Cow;

/// How strictly two lines are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Exact,
    TrimEnd,
    Trim,
    Normalized,
}

/// Every level, strictest first.
pub(crate) const LEVELS: [Level; 4] =
    [Level::Exact, Level::TrimEnd, Level::Trim, Level::Normalized];

/// The comparison key of `line` at `level`.
pub(crate) fn key(line: &str, level: Level) -> Cow<'_, str> {
    match level {
        Level::Exact => Cow::Borrowed(line),
        Level::TrimEnd => Cow::Borrowed(line.trim_end()),
        Level::Trim => Cow::Borrowed(line.trim()),
        Level::Normalized => Cow::Owned(normalize(line)),
    }
}

/// Trims and maps typographic dashes, quotes and spaces to their ASCII forms.
pub fn normalize(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.trim().chars() {
        match c {
            '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}' => {
                out.push('-');
            }
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{FF07}' => {
                out.push('\'');
            }
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{FF02}' => {
                out.push('"');
            }
            '\u{00A0}' | '\u{2002}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => {
                out.push(' ');
            }
            '\u{2026}' => out.push_str("..."),
            other => out.push(other),
        }
    }
    out
}

/// What a hunk asks to find.
pub(crate) struct Wanted<'a> {
    /// The `@@` anchor lines, outermost first.
    pub anchors: &'a [String],
    /// Context and removed lines, in order.
    pub old: &'a [&'a str],
    /// The match must end at the end of the file.
    pub end_of_file: bool,
}

/// Where a hunk applies, or why it does not.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// The one place: index of the first old line (or the insertion point).
    At(usize),
    /// More than one place (0-based starts).
    Ambiguous(Vec<usize>),
    /// The anchors exist in order but the lines do not follow them.
    NoMatch,
    /// An anchor (its index) was not found after `from`.
    AnchorMissing(usize),
}

/// Finds where `wanted` applies in `lines`, looking at index `from` and after.
pub(crate) fn locate(lines: &[String], from: usize, wanted: &Wanted<'_>) -> Found {
    for level in LEVELS {
        let file: Vec<Cow<'_, str>> = lines.iter().map(|l| key(l, level)).collect();
        let old: Vec<Cow<'_, str>> = wanted.old.iter().map(|l| key(l, level)).collect();
        let mut places = candidates(&file, &old, from, wanted, level);
        places.sort_unstable();
        places.dedup();
        match places.len() {
            0 => {}
            1 => return Found::At(places[0]),
            _ => return Found::Ambiguous(places),
        }
    }
    match missing_anchor(lines, from, wanted.anchors) {
        Some(index) => Found::AnchorMissing(index),
        None => Found::NoMatch,
    }
}

fn candidates(
    file: &[Cow<'_, str>],
    old: &[Cow<'_, str>],
    from: usize,
    wanted: &Wanted<'_>,
    level: Level,
) -> Vec<usize> {
    let n = file.len();
    let fits = |p: usize| {
        p + old.len() <= n
            && (!wanted.end_of_file || p + old.len() == n)
            && old.iter().zip(&file[p..]).all(|(a, b)| a == b)
    };
    if wanted.anchors.is_empty() {
        if old.is_empty() {
            return vec![n];
        }
        return (from.min(n)..=n.saturating_sub(old.len()))
            .filter(|p| fits(*p))
            .collect();
    }
    let anchors: Vec<Cow<'_, str>> = wanted.anchors.iter().map(|a| key(a, level)).collect();
    let is_anchor = |i: usize, a: &str| {
        file[i] == a || (level == Level::Normalized && !a.is_empty() && file[i].contains(a))
    };
    let mut places = Vec::new();
    for first in (from..n).filter(|i| is_anchor(*i, &anchors[0])) {
        let mut at = Some(first);
        for anchor in &anchors[1..] {
            at = at.and_then(|p| (p + 1..n).find(|i| is_anchor(*i, anchor)));
        }
        let Some(anchor_at) = at else { continue };
        if old.is_empty() {
            places.push(anchor_at + 1);
        } else if let Some(p) = (anchor_at..n).find(|p| fits(*p)) {
            // The nearest match after the anchor is the one the anchor points at.
            places.push(p);
        }
    }
    places
}

/// The index of the first anchor that cannot be found (loosest level) after `from`.
fn missing_anchor(lines: &[String], from: usize, anchors: &[String]) -> Option<usize> {
    let file: Vec<String> = lines.iter().map(|l| normalize(l)).collect();
    let mut at = from;
    for (index, anchor) in anchors.iter().enumerate() {
        let anchor = normalize(anchor);
        match (at..file.len()).find(|i| file[*i].contains(&anchor)) {
            Some(found) => at = found + 1,
            None => return Some(index),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn levels_and_ambiguity() {
        let file = lines("fn a() {\n    return 1;\n}\nfn b() {\n    return 1;\n}");
        let old = ["    return 1;"];
        let plain = Wanted {
            anchors: &[],
            old: &old,
            end_of_file: false,
        };
        assert_eq!(locate(&file, 0, &plain), Found::Ambiguous(vec![1, 4]));
        let anchors = ["fn b() {".to_owned()];
        let anchored = Wanted {
            anchors: &anchors,
            old: &old,
            end_of_file: false,
        };
        assert_eq!(locate(&file, 0, &anchored), Found::At(4));
        let eof = Wanted {
            anchors: &[],
            old: &["}"],
            end_of_file: true,
        };
        assert_eq!(locate(&file, 0, &eof), Found::At(5));
        let fuzzy = ["return 1;  "];
        let loose = Wanted {
            anchors: &anchors,
            old: &fuzzy,
            end_of_file: false,
        };
        assert_eq!(locate(&file, 0, &loose), Found::At(4));
        let nowhere = ["fn c() {".to_owned()];
        let missing = Wanted {
            anchors: &nowhere,
            old: &old,
            end_of_file: false,
        };
        assert_eq!(locate(&file, 0, &missing), Found::AnchorMissing(0));
    }

    #[test]
    fn normalises_look_alikes() {
        assert_eq!(
            normalize("\u{201C}a\u{2014}b\u{2019}\u{00A0}c\u{201D} "),
            "\"a-b' c\""
        );
    }
}
