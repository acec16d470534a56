//! The in-memory side of `apply_patch`: every operation reads from and writes to an overlay
//! of the workspace, so the whole patch is checked before a single byte is written.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::commit::Change;
use super::parser::FileOp;
use super::text::apply_hunks;
use crate::error::ToolError;
use crate::fsio::{io_failed, read_bounded};
use crate::policy::{canonical_root, parse_lexical, resolve_for_write};

/// One file as the patch sees it: on disk before, and after the operations so far.
struct Entry {
    abs: PathBuf,
    before: Option<Vec<u8>>,
    after: Option<Vec<u8>>,
}

/// The overlay: workspace-relative path to entry, plus the order files were first touched.
pub(crate) struct Plan {
    root: PathBuf,
    max_file_bytes: usize,
    entries: BTreeMap<String, Entry>,
    order: Vec<String>,
}

impl Plan {
    /// An empty overlay of `workspace`.
    pub(crate) fn new(workspace: &Path, max_file_bytes: usize) -> Result<Self, ToolError> {
        Ok(Self {
            root: canonical_root(workspace)?,
            max_file_bytes,
            entries: BTreeMap::new(),
            order: Vec::new(),
        })
    }

    /// The canonical workspace root.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Applies one operation to the overlay and describes it for the result.
    pub(crate) fn apply(&mut self, op: &FileOp) -> Result<Value, ToolError> {
        match op {
            FileOp::Add { path, content } => {
                let key = self.load(path, "Add File")?;
                // As in the reference implementation (codex `apply-patch`), adding onto an
                // existing file replaces it: reported as a modification.
                let existed = self.current(&key).is_some();
                self.set(&key, Some(content.clone().into_bytes()))?;
                Ok(if existed {
                    json!({"path": key, "action": "updated", "overwritten": true})
                } else {
                    json!({"path": key, "action": "added"})
                })
            }
            FileOp::Delete { path } => {
                let key = self.load(path, "Delete File")?;
                if self.current(&key).is_none() {
                    return Err(ToolError::failed(format!(
                        "Delete File: {key} does not exist"
                    )));
                }
                self.set(&key, None)?;
                Ok(json!({"path": key, "action": "deleted"}))
            }
            FileOp::Update {
                path,
                move_to,
                hunks,
            } => {
                let key = self.load(path, "Update File")?;
                let Some(bytes) = self.current(&key) else {
                    return Err(ToolError::failed(format!(
                        "Update File: {key} does not exist; use Add File to create it"
                    )));
                };
                let text = std::str::from_utf8(bytes).map_err(|_| {
                    ToolError::failed(format!("Update File: {key} is not UTF-8 text"))
                })?;
                let updated = apply_hunks(text, hunks)
                    .map_err(|e| ToolError::failed(format!("Update File: {key}: {e}")))?;
                let Some(to) = move_to else {
                    self.set(&key, Some(updated.into_bytes()))?;
                    return Ok(json!({"path": key, "action": "updated"}));
                };
                let to_key = self.load(to, "Move to")?;
                if to_key == key {
                    self.set(&key, Some(updated.into_bytes()))?;
                    return Ok(json!({"path": key, "action": "updated"}));
                }
                // Moving onto an existing file replaces it, as in the reference
                // implementation: the destination is reported as modified.
                let existed = self.current(&to_key).is_some();
                self.set(&to_key, Some(updated.into_bytes()))?;
                self.set(&key, None)?;
                Ok(if existed {
                    json!({"path": key, "action": "moved", "to": to_key, "overwritten": true})
                } else {
                    json!({"path": key, "action": "moved", "to": to_key})
                })
            }
        }
    }

    /// Every path the patch touched, in first-touch order.
    pub(crate) fn touched(&self) -> Vec<String> {
        self.order.clone()
    }

    /// The files whose content differs from the disk, in first-touch order.
    pub(crate) fn into_changes(mut self) -> Vec<Change> {
        self.order
            .iter()
            .filter_map(|key| self.entries.remove(key))
            .filter(|e| e.before != e.after)
            .map(|e| Change {
                path: e.abs,
                before: e.before,
                after: e.after,
            })
            .collect()
    }

    /// Checks `raw` against the path policy and brings its disk state into the overlay.
    fn load(&mut self, raw: &str, header: &str) -> Result<String, ToolError> {
        let blocked = |e: ToolError| ToolError {
            message: format!("{header}: {}", e.message),
            field: Some("patch".to_owned()),
            ..e
        };
        let key = parse_lexical(raw).map_err(blocked)?.into_string();
        if self.entries.contains_key(&key) {
            return Ok(key);
        }
        let abs = resolve_for_write(&self.root, raw).map_err(blocked)?;
        let before = match fs::symlink_metadata(&abs) {
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(io_failed("inspect", &key, &e)),
            Ok(meta) if meta.is_dir() => {
                return Err(ToolError::failed(format!(
                    "{header}: {key} is a directory, not a file"
                )));
            }
            Ok(_) => Some(read_bounded(&self.root, &abs, &key, self.max_file_bytes)?),
        };
        self.entries.insert(
            key.clone(),
            Entry {
                abs,
                after: before.clone(),
                before,
            },
        );
        self.order.push(key.clone());
        Ok(key)
    }

    fn current(&self, key: &str) -> Option<&Vec<u8>> {
        self.entries.get(key).and_then(|e| e.after.as_ref())
    }

    fn set(&mut self, key: &str, content: Option<Vec<u8>>) -> Result<(), ToolError> {
        if let Some(bytes) = &content
            && bytes.len() > self.max_file_bytes
        {
            return Err(ToolError::failed(format!(
                "{key} would be {} bytes; files are limited to {} bytes",
                bytes.len(),
                self.max_file_bytes
            )));
        }
        if let Some(entry) = self.entries.get_mut(key) {
            entry.after = content;
        }
        Ok(())
    }
}
