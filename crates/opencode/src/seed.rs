//! Workspace seeding before a session starts (SPEC §5), fail-closed: the two contract tools
//! in `.opencode/tools/`, their manifest, and the selected agent's contract in
//! `.cache/opencode/`. Also the private HOME's OpenCode config directory.
//!
//! OpenCode installs `@opencode-ai/plugin` into every config directory it loads (the
//! workspace's `.opencode/` and `$XDG_CONFIG_HOME/opencode/`) unless that directory already
//! has a `node_modules/` and a `package-lock.json` naming the package, and custom tools wait
//! for that install: with no network a run would hang before its first model call. Seeding
//! both files (the tools import nothing, so the package itself is never needed) keeps
//! OpenCode offline.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::binary::pinned_version;

/// The custom tools seeded into `.opencode/tools/`, by name.
pub const PROJECT_CUSTOM_TOOLS: &[&str] = &[
    "coding_agent_get_agent_integration_contract",
    "coding_agent_describe_selected_agent_contract",
];

/// Where the tools read the contract, relative to the workspace.
pub const CONTRACT_PATH: &str = ".cache/opencode/selected_agent_contract.json";

const GET_TOOL: &str = include_str!("../assets/coding_agent_get_agent_integration_contract.ts");
const DESCRIBE_TOOL: &str =
    include_str!("../assets/coding_agent_describe_selected_agent_contract.ts");
const PACKAGE_NAME: &str = "draftsmith-opencode-tools";
/// What OpenCode writes to `.opencode/.gitignore` when it first opens a project (1.18.33,
/// byte for byte), carried by every app so that first run changes nothing there.
const CONFIG_GITIGNORE: &str =
    "node_modules\npackage.json\npackage-lock.json\nbun.lock\n.gitignore";
const PLUGIN_PACKAGE: &str = "@opencode-ai/plugin";

/// A seed file could not be written; the run must not start.
#[derive(Debug, thiserror::Error)]
#[error("could not seed {}: {source}", path.display())]
pub struct SeedError {
    /// The file or directory that failed.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// The contract of an app with no selected runtime agent, well-formed so the tools answer
/// "no agent" rather than fail.
pub fn empty_contract() -> Value {
    json!({"agent": null, "tools": [], "runtime_ready": false, "diagnostics": []})
}

/// The project-local OpenCode files every app carries from its template on (the two tools
/// and their manifest), as `(relative path, text)`. Seeding rewrites the same files.
pub fn project_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = manifest_files()
        .into_iter()
        .map(|(name, text)| (format!(".opencode/{name}"), text))
        .collect();
    files.push((".opencode/.gitignore".into(), CONFIG_GITIGNORE.into()));
    for (name, source) in PROJECT_CUSTOM_TOOLS.iter().zip([GET_TOOL, DESCRIBE_TOOL]) {
        files.push((format!(".opencode/tools/{name}.ts"), source.to_owned()));
    }
    files
}

/// Writes the tools, their manifest and the contract (`None`: the empty contract) into
/// `workspace`, replacing what is there. Nothing is written through a symlink the agent may
/// have planted: such a seed fails, and the run with it. The contract is written compact,
/// as the runner seeds it while the workspace is refreshed: a file that already holds it
/// is left alone (the two forms rewrote it twice per run).
pub fn seed_workspace(workspace: &Path, contract: Option<&Value>) -> Result<(), SeedError> {
    seed_project(workspace)?;
    let text = match contract {
        Some(value) => value.to_string(),
        None => empty_contract().to_string(),
    };
    write(workspace, CONTRACT_PATH, &text)
}

/// Writes the tools and their manifest into `workspace`'s `.opencode/`, with the
/// `node_modules/` that spares OpenCode an install there: before a server's instance first
/// opens the workspace, which a session made ahead of the run does.
pub fn seed_project(workspace: &Path) -> Result<(), SeedError> {
    create_root(workspace)?;
    ensure_dir(workspace, ".opencode/node_modules")?;
    for (path, text) in project_files() {
        write(workspace, &path, &text)?;
    }
    Ok(())
}

/// Creates a private HOME: the four XDG directories under it and an OpenCode config
/// directory that needs no install (never through a symlink a former server's agent left).
pub fn prepare_home(home: &Path) -> Result<(), SeedError> {
    create_root(home)?;
    for dir in xdg_dirs(home).iter().map(|(_, dir)| dir) {
        let relative = dir.strip_prefix(home).unwrap_or(dir);
        ensure_dir(home, &relative.to_string_lossy())?;
    }
    ensure_dir(home, ".config/opencode/node_modules")?;
    for (name, text) in manifest_files() {
        write(home, &format!(".config/opencode/{name}"), &text)?;
    }
    Ok(())
}

/// The `XDG_*` variables for a private HOME.
pub fn xdg_dirs(home: &Path) -> [(&'static str, PathBuf); 4] {
    [
        ("XDG_CONFIG_HOME", home.join(".config")),
        ("XDG_DATA_HOME", home.join(".local").join("share")),
        ("XDG_CACHE_HOME", home.join(".cache")),
        ("XDG_STATE_HOME", home.join(".local").join("state")),
    ]
}

/// The `package.json` and `package-lock.json` of a config directory that needs no install.
fn manifest_files() -> Vec<(&'static str, String)> {
    let deps = json!({ PLUGIN_PACKAGE: pinned_version() });
    let manifest = json!({"name": PACKAGE_NAME, "private": true, "dependencies": deps});
    let lock = json!({
        "name": PACKAGE_NAME,
        "lockfileVersion": 3,
        "requires": true,
        "packages": {"": {"name": PACKAGE_NAME, "dependencies": deps}},
    });
    [("package.json", manifest), ("package-lock.json", lock)]
        .into_iter()
        .map(|(name, value)| {
            let text = serde_json::to_string_pretty(&value).unwrap_or_default();
            (name, format!("{text}\n"))
        })
        .collect()
}

/// The service's own directory (a workspace or a HOME), made if missing.
fn create_root(root: &Path) -> Result<(), SeedError> {
    std::fs::create_dir_all(root).map_err(|source| SeedError {
        path: root.to_path_buf(),
        source,
    })
}

fn ensure_dir(root: &Path, relative: &str) -> Result<(), SeedError> {
    draftsmith_tools::ensure_service_dir(root, relative)
        .map(drop)
        .map_err(|e| seed_error(root, relative, e))
}

fn write(root: &Path, relative: &str, text: &str) -> Result<(), SeedError> {
    draftsmith_tools::write_service_file(root, relative, text.as_bytes())
        .map_err(|e| seed_error(root, relative, e))
}

fn seed_error(root: &Path, relative: &str, error: draftsmith_tools::ToolError) -> SeedError {
    SeedError {
        path: root.join(relative),
        source: std::io::Error::other(error.message),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seeds_every_file_and_the_empty_contract() {
        let dir = std::env::temp_dir().join(format!("ds-seed-{}", std::process::id()));
        seed_workspace(&dir, None).unwrap();
        for name in PROJECT_CUSTOM_TOOLS {
            assert!(dir.join(format!(".opencode/tools/{name}.ts")).is_file());
        }
        let lock: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(".opencode/package-lock.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            lock["packages"][""]["dependencies"][PLUGIN_PACKAGE],
            pinned_version()
        );
        let contract: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(CONTRACT_PATH)).unwrap())
                .unwrap();
        assert_eq!(contract, empty_contract());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The runner seeds the contract compact (`draftsmith_runner::contract::file_content`)
    /// before the engine's own seeding; a run rewrites neither form.
    #[test]
    fn a_contract_already_seeded_compact_is_left_alone() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("ds-seed-same-{}", std::process::id()));
        let contract = json!({"agent": {"name": "a"}, "tools": [], "runtime_ready": true});
        std::fs::create_dir_all(dir.join(".cache/opencode")).unwrap();
        std::fs::write(dir.join(CONTRACT_PATH), contract.to_string()).unwrap();
        let before = std::fs::metadata(dir.join(CONTRACT_PATH)).unwrap().ino();
        seed_workspace(&dir, Some(&contract)).unwrap();
        let after = std::fs::metadata(dir.join(CONTRACT_PATH)).unwrap();
        assert_eq!(after.ino(), before, "the contract file was written again");
        let changed = json!({"agent": null, "tools": [], "runtime_ready": false});
        seed_workspace(&dir, Some(&changed)).unwrap();
        let text = std::fs::read_to_string(dir.join(CONTRACT_PATH)).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), changed);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_planted_symlink_fails_closed_and_nothing_lands_outside() {
        let base = std::env::temp_dir().join(format!("ds-seed-link-{}", std::process::id()));
        let (workspace, home, outside) = (base.join("ws"), base.join("home"), base.join("out"));
        for dir in [&workspace, &home, &outside] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::os::unix::fs::symlink(&outside, workspace.join(".opencode")).unwrap();
        assert!(seed_workspace(&workspace, None).is_err());
        std::os::unix::fs::symlink(&outside, home.join(".config")).unwrap();
        assert!(prepare_home(&home).is_err());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_file_in_the_way_fails_closed() {
        let dir = std::env::temp_dir().join(format!("ds-seed-block-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(".opencode"), "not a directory").unwrap();
        let err = seed_workspace(&dir, None).unwrap_err();
        assert!(err.path.starts_with(dir.join(".opencode")), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
