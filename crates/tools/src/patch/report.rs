//! Failure messages for hunks that do not apply: where the hunk was ambiguous, or the
//! file's text nearest to what the hunk expected, with line numbers, so the model can repair.

use super::seek::normalize;

/// Most candidate places listed for an ambiguous hunk.
const MAX_PLACES: usize = 5;
/// Above this many line comparisons, similarity is judged on equal lines only.
const MAX_FUZZY_WORK: usize = 400_000;

/// The message for a hunk that matches at several `places` (0-based).
pub(crate) fn ambiguous(places: &[usize]) -> String {
    let shown: Vec<String> = places
        .iter()
        .take(MAX_PLACES)
        .map(|p| (p + 1).to_string())
        .collect();
    let more = places.len().saturating_sub(MAX_PLACES);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "is ambiguous: its lines match at lines {}{more}; add an \"@@ <line above the change>\" anchor (such as the enclosing function or class) or more unchanged context lines so it matches one place only",
        shown.join(", ")
    )
}

/// The message for a hunk whose lines `old` were not found, showing the nearest window.
pub(crate) fn not_found(file: &[String], old: &[&str], from: usize) -> String {
    let mut message = String::from("did not match the file. The hunk expected these lines:\n");
    for line in old {
        message.push_str(&format!("  {line}\n"));
    }
    match nearest(file, old) {
        Some((start, len)) => {
            message.push_str(&format!(
                "The most similar text in the file is at lines {}-{}:\n",
                start + 1,
                start + len
            ));
            for (index, line) in file[start..start + len].iter().enumerate() {
                message.push_str(&format!("{:>6} | {line}\n", start + index + 1));
            }
            if from > start {
                message.push_str(&format!(
                    "(hunks must be in file order; the previous hunk ended at line {from})\n"
                ));
            }
            message.push_str("Read the file again and copy the context lines exactly.");
        }
        None => message.push_str(
            "No similar text was found; read the file and copy the context lines exactly.",
        ),
    }
    message
}

/// The start and length of the window of `file` most similar to `old`, if any line is alike.
fn nearest(file: &[String], old: &[&str]) -> Option<(usize, usize)> {
    if file.is_empty() || old.is_empty() {
        return None;
    }
    let len = old.len().min(file.len());
    let fuzzy = file.len().saturating_mul(len) <= MAX_FUZZY_WORK;
    let file_keys: Vec<Key> = file.iter().map(|l| Key::new(l, fuzzy)).collect();
    let old_keys: Vec<Key> = old.iter().map(|l| Key::new(l, fuzzy)).collect();
    let mut best = (0.0f64, 0usize);
    for start in 0..=file.len() - len {
        let score: f64 = (0..len)
            .map(|i| old_keys[i].similarity(&file_keys[start + i]))
            .sum();
        if score > best.0 + 1e-9 {
            best = (score, start);
        }
    }
    (best.0 > 0.3).then_some((best.1, len))
}

/// A line prepared for comparison: normalised, with its sorted character bigrams.
struct Key {
    text: String,
    grams: Vec<(char, char)>,
}

impl Key {
    fn new(line: &str, fuzzy: bool) -> Self {
        let text = normalize(line);
        let mut grams = Vec::new();
        if fuzzy {
            let chars: Vec<char> = text.chars().collect();
            grams = chars.windows(2).map(|w| (w[0], w[1])).collect();
            grams.sort_unstable();
        }
        Self { text, grams }
    }

    /// 1 for equal lines, otherwise the bigram Dice coefficient (0 when not fuzzy).
    fn similarity(&self, other: &Key) -> f64 {
        if self.text == other.text {
            return if self.text.is_empty() { 0.2 } else { 1.0 };
        }
        let total = self.grams.len() + other.grams.len();
        if total == 0 {
            return 0.0;
        }
        let (mut i, mut j, mut shared) = (0, 0, 0usize);
        while i < self.grams.len() && j < other.grams.len() {
            match self.grams[i].cmp(&other.grams[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    shared += 1;
                    i += 1;
                    j += 1;
                }
            }
        }
        2.0 * shared as f64 / total as f64
    }
}
