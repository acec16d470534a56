//! A file and a patch (split at the first NUL byte): applying the patch's updates in memory
//! never panics, and a hunk that only re-states context leaves the file as it was.
#![no_main]

use draftsmith_tools::patch::{FileOp, HunkLine, apply_hunks, parse_patch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let file = String::from_utf8_lossy(&data[..split]);
    let patch = String::from_utf8_lossy(data.get(split + 1..).unwrap_or_default());
    let Ok(patch) = parse_patch(&patch) else { return };
    for op in &patch.ops {
        if let FileOp::Update { hunks, .. } = op {
            let result = apply_hunks(&file, hunks);
            let context_only = hunks
                .iter()
                .all(|h| h.lines.iter().all(|l| matches!(l, HunkLine::Context(_))));
            if let (Ok(updated), true) = (&result, context_only) {
                assert_eq!(updated.as_str(), file.as_ref());
            }
        }
    }
});
