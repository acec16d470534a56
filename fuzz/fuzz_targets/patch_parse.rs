//! Any text fed to the patch parser yields a patch or an error with a line inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match draftsmith_tools::patch::parse_patch(&text) {
        Ok(patch) => assert!(!patch.ops.is_empty()),
        Err(error) => assert!(error.line >= 1 && error.line <= text.lines().count().max(1)),
    }
});
