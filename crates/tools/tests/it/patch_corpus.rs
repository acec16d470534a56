//! The data-driven `apply_patch` corpus in `tests/fixtures/patches` (see its README).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use crate::common::{Sandbox, call_json, snapshot};

/// Files below `root` with their bytes (directories are not compared: git cannot hold empty ones).
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn copy_tree(from: &Path, to: &Path) {
    for (rel, bytes) in files(from) {
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, bytes).unwrap();
    }
}

fn readable(tree: &BTreeMap<String, Vec<u8>>) -> BTreeMap<&str, String> {
    tree.iter()
        .map(|(k, v)| (k.as_str(), format!("{:?}", String::from_utf8_lossy(v))))
        .collect()
}

/// Runs one case; returns a description of the mismatch, if any.
fn run_case(dir: &Path) -> Result<(), String> {
    let sandbox = Sandbox::new();
    copy_tree(&dir.join("input"), &sandbox.ws());
    let before = files(&sandbox.ws());
    let outside = snapshot(&sandbox.outside());
    let patch =
        std::fs::read_to_string(dir.join("patch.txt")).map_err(|e| format!("patch.txt: {e}"))?;
    let outcome = call_json(&sandbox.ctx(), "apply_patch", json!({"patch": patch}));
    if snapshot(&sandbox.outside()) != outside {
        return Err("the directory outside the workspace changed".into());
    }
    let after = files(&sandbox.ws());
    match std::fs::read_to_string(dir.join("expected_error.txt")) {
        Ok(wanted) => {
            let wanted = wanted.lines().next().unwrap_or("").trim();
            let Some(error) = &outcome.error else {
                return Err(format!(
                    "expected an error containing {wanted:?}, got {}",
                    outcome.output
                ));
            };
            let text = error.to_string();
            if !text.contains(wanted) {
                return Err(format!("error {text:?} does not contain {wanted:?}"));
            }
            if after != before {
                return Err(format!(
                    "a failed patch changed the tree: {:#?}",
                    readable(&after)
                ));
            }
        }
        Err(_) => {
            if let Some(error) = &outcome.error {
                return Err(format!("unexpected failure: {error}"));
            }
            if let Ok(report) = std::fs::read_to_string(dir.join("expected_report.json")) {
                let wanted: serde_json::Value =
                    serde_json::from_str(&report).map_err(|e| format!("expected_report: {e}"))?;
                if outcome.output["files"] != wanted {
                    return Err(format!(
                        "reported {} instead of {wanted}",
                        outcome.output["files"]
                    ));
                }
            }
            let expected = files(&dir.join("expected"));
            if after != expected {
                return Err(format!(
                    "tree differs\nexpected: {:#?}\nactual: {:#?}",
                    readable(&expected),
                    readable(&after)
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn every_scenario_on_disk() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/patches");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 60, "only {} scenarios", dirs.len());
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|dir| {
            run_case(dir)
                .err()
                .map(|e| format!("{}: {e}", dir.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n\n")
    );
}
