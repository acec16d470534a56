//! Hostile paths and symlink layouts against every writing tool: nothing outside the
//! workspace (nor inside .git/ and friends) ever changes, and every refusal says why.

use std::os::unix::fs::symlink;

use draftsmith_tools::ToolOutcome;
use serde_json::{Value, json};

use crate::common::{Sandbox, call_json, code, snapshot};

/// Paths refused by their spelling alone.
fn lexical_hostile() -> Vec<String> {
    let mut paths: Vec<String> = [
        "/etc/passwd",
        "/tmp/pwned",
        "//etc/passwd",
        "/",
        "///",
        "/..",
        "/./x",
        "..",
        "../",
        "../x",
        "../outside/secret.txt",
        "../../x",
        "./../x",
        ".././x",
        "x/..",
        "x/../..",
        "a/b/../../../x",
        "a/./../../x",
        "..//..//x",
        "src/../../outside/secret.txt",
        "..\\x",
        "a\\b",
        "\\\\server\\share\\x",
        "C:\\x",
        "C:/x",
        "c:x",
        "Z:",
        "\\",
        "~",
        "~/x",
        "~root/.ssh/authorized_keys",
        "a\0b",
        "\0",
        "x\0/../y",
        "a\nb",
        "a\rb",
        "a\tb",
        "\u{1b}[31m",
        "a\u{7f}",
        "\u{85}x",
        "x/\u{1}",
        ".git",
        ".git/config",
        "./.git/hooks/pre-commit",
        ".//.git//x",
        "a/.git/HEAD",
        "node_modules",
        "node_modules/x/index.js",
        "web/node_modules/.bin/x",
        "dist",
        "dist/index.html",
        "x/dist/y",
        ".cache/x",
        ".vite/deps/x",
        ".turbo/x",
        ".parcel-cache/x",
        ".npm/x",
        ".pnpm-store/x",
        ".yarn/x",
        "a.tsbuildinfo",
        "x/tsconfig.tsbuildinfo",
        ".eslintcache",
        "x/.stylelintcache",
        // Blocked names compared without case and without trailing dots or spaces.
        ".GIT/hooks/pre-commit",
        ".Git/config",
        "Node_Modules/x.js",
        ".git /config",
        ".git./config",
        "DIST/index.html",
        "x/.ESLintCache",
        // Names that display as something else.
        "src/\u{202E}sj.txt",
        "\u{2066}a.js",
        "a\u{200B}.js",
        "\u{FEFF}index.html",
        "a\u{2060}b",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for bad in [
        "..",
        ".git",
        "node_modules",
        "dist",
        ".cache",
        "a\\b",
        "a\u{0}b",
        "a\u{1}b",
    ] {
        for form in ["{}/x", "src/{}/x", "./{}/x", "a/b/{}", "{}/"] {
            paths.push(form.replace("{}", bad));
        }
    }
    paths.push("a".repeat(2000));
    paths.push(format!("{}x", "a/".repeat(600)));
    paths.push(format!("src/{}.ts", "n".repeat(300)));
    paths
}

/// Spellings that are not refused but must stay inside the workspace when used.
fn weird_but_inside() -> Vec<String> {
    [
        "%2e%2e/x",
        "..%2f..%2fx",
        "%252e%252e%252fx",
        "....",
        ".../x",
        "..a",
        "a..",
        " ../x",
        "..\u{2215}x",
        "\u{ff0e}\u{ff0e}/x",
        "..;/x",
        "a/.../b",
        "./x",
        "x/.",
        "self_link/inside.txt",
        "real/inner.txt",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Symlinks inside the workspace that lead out (or nowhere), and paths through them.
fn symlink_layout(sandbox: &Sandbox) -> Vec<String> {
    let ws = sandbox.ws();
    let outside = sandbox.outside();
    symlink(&outside, ws.join("link_out")).unwrap();
    symlink("../outside", ws.join("link_out_rel")).unwrap();
    symlink(outside.join("secret.txt"), ws.join("link_file")).unwrap();
    symlink("chain2", ws.join("chain1")).unwrap();
    symlink(&outside, ws.join("chain2")).unwrap();
    symlink("/", ws.join("root_link")).unwrap();
    symlink(outside.join("created.txt"), ws.join("dangling")).unwrap();
    symlink("../outside/created_rel.txt", ws.join("dangling_rel")).unwrap();
    symlink("../outside/newdir", ws.join("dangling_dir")).unwrap();
    std::fs::create_dir_all(ws.join(".git")).unwrap();
    std::fs::write(ws.join(".git/config"), "[core]\n").unwrap();
    symlink(".git", ws.join("git_link")).unwrap();
    symlink("loop_b", ws.join("loop_a")).unwrap();
    symlink("loop_a", ws.join("loop_b")).unwrap();
    std::fs::create_dir_all(ws.join("real")).unwrap();
    symlink(&outside, ws.join("real/inner_out")).unwrap();
    symlink("../..", ws.join("real/up")).unwrap();
    symlink(".", ws.join("self_link")).unwrap();
    std::fs::write(ws.join("inside_target.txt"), "inside\n").unwrap();
    symlink("inside_target.txt", ws.join("inside_link")).unwrap();
    [
        "link_out",
        "link_out/secret.txt",
        "link_out/new.txt",
        "link_out/sub/deep.txt",
        "link_out/sub/new/deeper.txt",
        "link_out_rel/secret.txt",
        "link_out_rel/new.txt",
        "link_file",
        "chain1",
        "chain1/secret.txt",
        "chain1/new.txt",
        "chain2/secret.txt",
        "root_link",
        "root_link/tmp/pwned",
        "root_link/etc/passwd",
        "dangling",
        "dangling_rel",
        "dangling_dir",
        "dangling_dir/x.txt",
        "git_link",
        "git_link/config",
        "git_link/hooks/x",
        "loop_a",
        "loop_a/x",
        "loop_b",
        "real/inner_out",
        "real/inner_out/secret.txt",
        "real/inner_out/new/deeper.txt",
        "real/up/outside/secret.txt",
        "real/up",
        "inside_link",
        "self_link",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Every way a writing tool can be pointed at `path`.
fn attacks(path: &str) -> Vec<(&'static str, &'static str, Value)> {
    let mut calls = vec![
        (
            "write",
            "write",
            json!({"path": path, "content": "pwned\n"}),
        ),
        ("delete", "delete", json!({"path": path})),
        (
            "rename to",
            "rename",
            json!({"from_path": "victim.txt", "to_path": path}),
        ),
        (
            "rename from",
            "rename",
            json!({"from_path": path, "to_path": "moved.txt"}),
        ),
    ];
    // The patch format is line-based: a path with a line break cannot be written in a header.
    if !path.contains('\n') {
        let patches = [
            ("patch add", format!("*** Add File: {path}\n+pwned\n")),
            (
                "patch update",
                format!("*** Update File: {path}\n@@\n-secret\n+pwned\n"),
            ),
            ("patch delete", format!("*** Delete File: {path}\n")),
            (
                "patch move",
                format!("*** Update File: victim.txt\n*** Move to: {path}\n"),
            ),
        ];
        for (what, body) in patches {
            calls.push((
                what,
                "apply_patch",
                json!({"patch": format!("*** Begin Patch\n{body}*** End Patch\n")}),
            ));
        }
    }
    calls
}

fn expect_refused(outcome: &ToolOutcome, allowed: &[&str], what: &str) {
    assert!(!outcome.is_ok(), "{what}: succeeded: {}", outcome.output);
    assert!(
        allowed.contains(&code(outcome)),
        "{what}: {}",
        outcome.output
    );
}

#[test]
fn hostile_spellings_are_refused_by_every_writing_tool() {
    let paths = lexical_hostile();
    assert!(paths.len() >= 100, "{} hostile paths", paths.len());
    let sandbox = Sandbox::new();
    sandbox.put("victim.txt", "secret\n");
    std::fs::create_dir_all(sandbox.ws().join(".git")).unwrap();
    sandbox.put(".git/config", "[core]\n");
    sandbox.put("node_modules/x/index.js", "secret\n");
    let before = snapshot(sandbox.dir.path());
    let ctx = sandbox.ctx();
    for path in &paths {
        let empty =
            draftsmith_core::DraftPath::parse(path) == Err(draftsmith_core::PathError::Empty);
        for (what, tool, args) in attacks(path) {
            let outcome = call_json(&ctx, tool, args);
            let what = format!("{what} {path:?}");
            if empty {
                expect_refused(
                    &outcome,
                    &[
                        "CODING_AGENT_TOOL_INPUT_INVALID",
                        "CODING_AGENT_PATH_BLOCKED",
                    ],
                    &what,
                );
            } else {
                expect_refused(&outcome, &["CODING_AGENT_PATH_BLOCKED"], &what);
            }
            assert_eq!(
                snapshot(sandbox.dir.path()),
                before,
                "{what} changed something"
            );
        }
    }
}

#[test]
fn symlinks_never_lead_a_write_outside() {
    let sandbox = Sandbox::new();
    sandbox.put("victim.txt", "secret\n");
    let paths = symlink_layout(&sandbox);
    let before = snapshot(sandbox.dir.path());
    let ctx = sandbox.ctx();
    for path in &paths {
        for (what, tool, args) in attacks(path) {
            let outcome = call_json(&ctx, tool, args);
            let what = format!("{what} {path:?}");
            expect_refused(&outcome, &["CODING_AGENT_PATH_BLOCKED"], &what);
            assert_eq!(
                snapshot(sandbox.dir.path()),
                before,
                "{what} changed something"
            );
        }
    }
}

#[test]
fn weird_but_harmless_names_stay_inside() {
    for path in weird_but_inside() {
        for index in 0..8 {
            let sandbox = Sandbox::new();
            sandbox.put("victim.txt", "secret\n");
            std::fs::create_dir_all(sandbox.ws().join("real")).unwrap();
            symlink(".", sandbox.ws().join("self_link")).unwrap();
            let outside = snapshot(&sandbox.outside());
            let (what, tool, args) = attacks(&path).swap_remove(index);
            let outcome = call_json(&sandbox.ctx(), tool, args);
            assert_eq!(snapshot(&sandbox.outside()), outside, "{what} {path:?}");
            let parent = sandbox.dir.path();
            let stray: Vec<_> = std::fs::read_dir(parent)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "ws" && n != "outside")
                .collect();
            assert!(
                stray.is_empty(),
                "{what} {path:?} created {stray:?}: {}",
                outcome.output
            );
        }
    }
}

#[test]
fn reads_follow_symlinks_only_inside() {
    let sandbox = Sandbox::new();
    symlink_layout(&sandbox);
    let ctx = sandbox.ctx();
    let ok = call_json(&ctx, "read", json!({"path": "inside_link"}));
    assert_eq!(ok.output["content"], "inside\n");
    for path in [
        "link_file",
        "link_out/secret.txt",
        "chain1/secret.txt",
        "root_link/etc/passwd",
        "git_link/config",
        "dangling",
        "loop_a",
    ] {
        let outcome = call_json(&ctx, "read", json!({"path": path}));
        expect_refused(&outcome, &["CODING_AGENT_PATH_BLOCKED"], path);
    }
    for (tool, args) in [
        ("list", json!({"path": "link_out"})),
        ("search", json!({"pattern": "secret", "path": "link_out"})),
        ("glob", json!({"pattern": "*", "path": "real/inner_out"})),
    ] {
        let outcome = call_json(&ctx, tool, args);
        expect_refused(&outcome, &["CODING_AGENT_PATH_BLOCKED"], tool);
    }
    let all = call_json(&ctx, "search", json!({"pattern": "secret"}));
    assert_eq!(
        all.output["matches"],
        json!([]),
        "search followed a link out: {}",
        all.output
    );
}
