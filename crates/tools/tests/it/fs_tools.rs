//! Success and failure behaviour of the file-system tools.

use serde_json::json;

use crate::common::{Sandbox, call_json, code};

fn tree() -> Sandbox {
    let s = Sandbox::new();
    s.put(".gitignore", "ignored/\n*.log\n");
    s.put(
        "src/main.ts",
        "import x from './x';\nconsole.log('hello');\n",
    );
    s.put(
        "src/components/Button.tsx",
        "export const Button = () => 'hello';\n",
    );
    s.put("README.md", "# Hello\nworld\n");
    s.put("ignored/a.txt", "hello\n");
    s.put("debug.log", "hello\n");
    s.put("node_modules/pkg/index.js", "hello\n");
    s.put(".git/HEAD", "ref: hello\n");
    s.put("dist/index.html", "hello\n");
    s.put(".opencode/tools/t.ts", "hello\n");
    s
}

#[test]
fn list_respects_ignore_rules_and_depth() {
    let s = tree();
    let out = call_json(&s.ctx(), "list", json!({}));
    assert_eq!(
        out.output,
        json!({"ok": true, "path": ".", "truncated": false, "entries": [
            ".gitignore", ".opencode/", ".opencode/tools/", "README.md", "src/", "src/components/", "src/main.ts"
        ]})
    );
    let out = call_json(&s.ctx(), "list", json!({"path": "src", "depth": 1}));
    assert_eq!(
        out.output["entries"],
        json!(["src/components/", "src/main.ts"])
    );
    let out = call_json(&s.ctx(), "list", json!({"path": "./src/", "depth": 5}));
    assert_eq!(
        out.output["entries"],
        json!([
            "src/components/",
            "src/components/Button.tsx",
            "src/main.ts"
        ])
    );
    let out = call_json(&s.ctx(), "list", json!({"path": "missing"}));
    assert_eq!(code(&out), "CODING_AGENT_TOOL_FAILED");
    for root in ["/", "//", "/."] {
        let out = call_json(&s.ctx(), "list", json!({"path": root}));
        assert_eq!(code(&out), "CODING_AGENT_PATH_BLOCKED", "{root}");
    }
    let out = call_json(&s.ctx(), "list", json!({"path": "node_modules"}));
    assert_eq!(code(&out), "CODING_AGENT_PATH_BLOCKED");
    let mut ctx = s.ctx();
    ctx.limits.max_list_entries = 2;
    let out = call_json(&ctx, "list", json!({}));
    assert_eq!(out.output["entries"].as_array().unwrap().len(), 2);
    assert_eq!(out.output["truncated"], true);
}

#[test]
fn ignore_files_apply_as_in_git_at_every_level() {
    let s = Sandbox::new();
    s.put(".gitignore", "*.log\n/build\nout/\n");
    s.put("app.log", "x");
    s.put("build/a.js", "x");
    s.put("src/build/b.js", "x");
    s.put("out", "a file, not the directory the rule names");
    s.put("src/.gitignore", "!keep.log\n");
    s.put("src/keep.log", "x");
    s.put("src/drop.log", "x");
    s.put(".ignore", "!forced.log\nsecret/\n");
    s.put("forced.log", "x");
    s.put("secret/a.txt", "x");
    let listed = |path: &str| {
        call_json(&s.ctx(), "list", json!({"path": path, "depth": 5})).output["entries"].clone()
    };
    assert_eq!(
        listed("."),
        json!([
            ".gitignore",
            ".ignore",
            "forced.log",
            "out",
            "src/",
            "src/.gitignore",
            "src/build/",
            "src/build/b.js",
            "src/keep.log"
        ])
    );
    // Listing below the root, the root's rules still apply.
    assert_eq!(
        listed("src"),
        json!([
            "src/.gitignore",
            "src/build/",
            "src/build/b.js",
            "src/keep.log"
        ])
    );
    assert_eq!(listed("secret"), json!([]));
    let found = call_json(&s.ctx(), "glob", json!({"pattern": "**/*.log"}));
    assert_eq!(found.output["files"], json!(["forced.log", "src/keep.log"]));
    // A changed ignore file applies at the next walk.
    s.put("src/.gitignore", "");
    let found = call_json(&s.ctx(), "glob", json!({"pattern": "**/*.log"}));
    assert_eq!(found.output["files"], json!(["forced.log"]));
}

#[test]
fn ignore_files_are_read_only_as_regular_files_of_the_workspace() {
    let s = Sandbox::new();
    // Rules in a host file must not apply through a link (an oracle on its lines), and a
    // FIFO must not hang the walk.
    std::fs::write(s.outside().join("rules"), "secret*\n").unwrap();
    std::os::unix::fs::symlink(s.outside().join("rules"), s.ws().join(".gitignore")).unwrap();
    s.put("secret.txt", "x");
    s.put("sub/x.txt", "x");
    let fifo = std::ffi::CString::new(s.ws().join("sub/.ignore").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let ctx = s.ctx();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(call_json(&ctx, "list", json!({"depth": 3})));
    });
    let out = finished
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the walk hung on a FIFO named .ignore");
    assert_eq!(
        out.output["entries"],
        json!([
            ".gitignore",
            "secret.txt",
            "sub/",
            "sub/.ignore",
            "sub/x.txt"
        ])
    );
}

#[test]
fn read_slices_by_line_and_bounds_output() {
    let s = Sandbox::new();
    let text: String = (1..=100).map(|i| format!("line {i}\n")).collect();
    s.put("f.txt", &text);
    let out = call_json(
        &s.ctx(),
        "read",
        json!({"path": "f.txt", "start_line": 3, "end_line": 4}),
    );
    assert_eq!(
        out.output,
        json!({"ok": true, "path": "f.txt", "content": "line 3\nline 4\n", "start_line": 3,
               "end_line": 4, "total_lines": 100, "truncated": false})
    );
    assert_eq!(out.paths, ["f.txt"]);
    let mut ctx = s.ctx();
    ctx.limits.max_read_bytes = 20;
    let out = call_json(&ctx, "read", json!({"path": "f.txt"}));
    assert_eq!(out.output["content"], "line 1\nline 2\n");
    assert_eq!(out.output["truncated"], true);
    assert_eq!(out.output["next_start_line"], 3);
    let out = call_json(
        &s.ctx(),
        "read",
        json!({"path": "f.txt", "start_line": 101}),
    );
    assert_eq!(code(&out), "CODING_AGENT_TOOL_FAILED");
    assert!(
        out.output["error"]["message"]
            .as_str()
            .unwrap()
            .contains("100 lines")
    );
    let out = call_json(&s.ctx(), "read", json!({"path": "nope.txt"}));
    assert_eq!(code(&out), "CODING_AGENT_TOOL_FAILED");
    std::fs::write(s.ws().join("bin"), b"\x00\x01\x02").unwrap();
    let out = call_json(&s.ctx(), "read", json!({"path": "bin"}));
    assert!(
        out.output["error"]["message"]
            .as_str()
            .unwrap()
            .contains("binary")
    );
    let out = call_json(&s.ctx(), "read", json!({"path": "/etc/passwd"}));
    assert_eq!(code(&out), "CODING_AGENT_PATH_BLOCKED");
    assert_eq!(out.output["error"]["field"], "path");
    s.put("empty.txt", "");
    let out = call_json(&s.ctx(), "read", json!({"path": "empty.txt"}));
    assert_eq!(out.output["total_lines"], 0);
    assert_eq!(out.output["content"], "");
}

#[test]
fn search_finds_lines_with_glob_and_bounds() {
    let s = tree();
    let out = call_json(&s.ctx(), "search", json!({"pattern": "hel+o"}));
    assert_eq!(
        out.output["matches"],
        json!([
            ".opencode/tools/t.ts:1:hello",
            "src/components/Button.tsx:1:export const Button = () => 'hello';",
            "src/main.ts:2:console.log('hello');"
        ])
    );
    let out = call_json(
        &s.ctx(),
        "search",
        json!({"pattern": "HELLO", "glob": "*.tsx", "case_insensitive": true}),
    );
    assert_eq!(
        out.output["matches"],
        json!(["src/components/Button.tsx:1:export const Button = () => 'hello';"])
    );
    let out = call_json(
        &s.ctx(),
        "search",
        json!({"pattern": "world", "path": "README.md"}),
    );
    assert_eq!(out.output["matches"], json!(["README.md:2:world"]));
    let mut ctx = s.ctx();
    ctx.limits.max_search_matches = 1;
    let out = call_json(&ctx, "search", json!({"pattern": "hello"}));
    assert_eq!(out.output["matches"].as_array().unwrap().len(), 1);
    assert_eq!(out.output["truncated"], true);
}

#[test]
fn glob_matches_paths() {
    let s = tree();
    let out = call_json(&s.ctx(), "glob", json!({"pattern": "*.ts"}));
    assert_eq!(
        out.output["files"],
        json!([".opencode/tools/t.ts", "src/main.ts"])
    );
    let out = call_json(&s.ctx(), "glob", json!({"pattern": "src/**/*.tsx"}));
    assert_eq!(out.output["files"], json!(["src/components/Button.tsx"]));
    let out = call_json(
        &s.ctx(),
        "glob",
        json!({"pattern": "**/*", "path": "src/components"}),
    );
    assert_eq!(out.output["files"], json!(["src/components/Button.tsx"]));
}

#[test]
fn write_delete_rename_round_trip() {
    let s = Sandbox::new();
    let ctx = s.ctx();
    let out = call_json(
        &ctx,
        "write",
        json!({"path": "a/b/c.txt", "content": "hi\n"}),
    );
    assert_eq!(
        out.output,
        json!({"ok": true, "path": "a/b/c.txt", "bytes": 3, "created": true})
    );
    assert_eq!(s.get("a/b/c.txt").as_deref(), Some("hi\n"));
    let out = call_json(
        &ctx,
        "write",
        json!({"path": "./a//b/c.txt", "content": "again"}),
    );
    assert_eq!(out.output["created"], false);
    assert_eq!(out.paths, ["a/b/c.txt"]);
    let out = call_json(
        &ctx,
        "rename",
        json!({"from_path": "a/b/c.txt", "to_path": "d/e.txt"}),
    );
    assert_eq!(
        out.output,
        json!({"ok": true, "from_path": "a/b/c.txt", "to_path": "d/e.txt"})
    );
    assert_eq!(s.get("d/e.txt").as_deref(), Some("again"));
    s.put("x.txt", "x");
    let out = call_json(
        &ctx,
        "rename",
        json!({"from_path": "x.txt", "to_path": "d/e.txt"}),
    );
    assert_eq!(code(&out), "CODING_AGENT_TOOL_FAILED");
    let out = call_json(&ctx, "rename", json!({"from_path": "nope", "to_path": "y"}));
    assert_eq!(code(&out), "CODING_AGENT_TOOL_FAILED");
    let out = call_json(
        &ctx,
        "rename",
        json!({"from_path": "d", "to_path": "d/inner"}),
    );
    assert_eq!(code(&out), "CODING_AGENT_TOOL_FAILED");
    let out = call_json(&ctx, "delete", json!({"path": "d/e.txt"}));
    assert_eq!(
        out.output,
        json!({"ok": true, "path": "d/e.txt", "deleted": "file"})
    );
    let out = call_json(&ctx, "delete", json!({"path": "a"}));
    assert_eq!(out.output["deleted"], "directory");
    assert!(!s.ws().join("a").exists());
    let out = call_json(&ctx, "delete", json!({"path": "a"}));
    assert_eq!(code(&out), "CODING_AGENT_TOOL_FAILED");
    let out = call_json(&ctx, "write", json!({"path": "d", "content": "x"}));
    assert_eq!(code(&out), "CODING_AGENT_TOOL_FAILED");
}

#[test]
fn write_bounds_size_and_keeps_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let s = Sandbox::new();
    let mut ctx = s.ctx();
    ctx.limits.max_file_bytes = 4;
    let out = call_json(
        &ctx,
        "write",
        json!({"path": "big.txt", "content": "12345"}),
    );
    assert_eq!(code(&out), "CODING_AGENT_TOOL_INPUT_INVALID");
    assert_eq!(out.output["error"]["field"], "content");
    assert!(!s.ws().join("big.txt").exists());
    s.put("run.sh", "echo");
    std::fs::set_permissions(
        s.ws().join("run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let out = call_json(
        &s.ctx(),
        "write",
        json!({"path": "run.sh", "content": "echo hi"}),
    );
    assert!(out.is_ok());
    let mode = std::fs::metadata(s.ws().join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    let leftovers: Vec<_> = std::fs::read_dir(s.ws())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn a_cancelled_run_runs_nothing() {
    let s = Sandbox::new();
    let ctx = s.ctx();
    ctx.cancel.cancel();
    let out = call_json(&ctx, "write", json!({"path": "a.txt", "content": "x"}));
    assert_eq!(code(&out), "CODING_AGENT_TOOL_FAILED");
    assert!(!s.ws().join("a.txt").exists());
}
