//! The OpenAPI document against the real server (issue 13): schemathesis fuzzes every
//! operation for a bounded time with a fixed seed and must find no server error, no answer
//! outside its schema, no undocumented status or content type, and no schema-valid request
//! refused; and a TypeScript client generated from `/openapi.json` type-checks with `tsc`
//! and drives a run end to end. The tools are pinned and installed by
//! `scripts/install-api-tools` (run here when missing).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use draftsmith_testkit::{ADMIN_TOKEN, ServerProcess, StoreKind, TestDb};
use serde_json::Value;
use tokio::process::Command;

use crate::support::binary;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The pinned tools, installed once by the project's own script.
fn tools() -> PathBuf {
    // Both tests of this module may ask at once: one installs, the other waits for it.
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = workspace();
    let ready = root.join(".tools/venv/bin/schemathesis").exists()
        && root
            .join(".tools/apiclient/node_modules/.bin/openapi-typescript")
            .exists();
    if !ready {
        let status = std::process::Command::new(root.join("scripts/install-api-tools"))
            .status()
            .unwrap();
        assert!(status.success(), "scripts/install-api-tools failed");
    }
    root.join(".tools")
}

/// The service as a child process with the demo model, no OpenCode, no verification.
async fn server(db: &TestDb) -> ServerProcess {
    ServerProcess::start_with_args(
        &binary(),
        db,
        &["--demo"],
        &[
            ("DRAFTSMITH_ADMIN_TOKEN", ADMIN_TOKEN),
            ("APPS_CODING_AGENT_VERIFY", "0"),
            ("DRAFTSMITH_OPENCODE_BIN", "/nonexistent/opencode"),
        ],
    )
    .await
}

async fn run(command: &mut Command, what: &str, limit: Duration) -> Output {
    let output = tokio::time::timeout(limit, command.kill_on_drop(true).output())
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {limit:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    if !output.status.success() {
        panic!(
            "{what} failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing() {
    let tools = tools();
    let db = TestDb::new(StoreKind::Sqlite).await;
    let server = server(&db).await;
    let doc: Value = reqwest::get(format!("{}/openapi.json", server.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    let reports = tempfile::tempdir().unwrap();
    let output = run(
        Command::new(tools.join("venv/bin/schemathesis"))
            .arg("run")
            .arg(format!("{}/openapi.json", server.base_url))
            .args(["-H", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_schema_conformance,positive_data_acceptance",
            ])
            .args(["--phases", "examples,coverage,fuzzing"])
            // Publishing builds the app in a sandbox (npm and Vite for `vite-react`): tens
            // of seconds per request, beyond this run's budget; tests/it/publish.rs covers it.
            .args(["--exclude-operation-id", "create_release"])
            // The app stream never ends by itself (a follower stays until it leaves), so
            // every request would run into the timeout; tests/it/app_events.rs covers it.
            .args(["--exclude-operation-id", "app_events"])
            .args(["--max-examples", "10", "--seed", "1", "--workers", "2"])
            .args(["--generation-database", "none", "--request-timeout", "20"])
            .args(["--no-color", "--report", "junit"])
            .arg("--report-junit-path")
            .arg(reports.path().join("junit.xml"))
            .env("SCHEMATHESIS_HOOKS", "")
            .current_dir(reports.path()),
        "schemathesis",
        Duration::from_secs(240),
    )
    .await;
    let text = String::from_utf8_lossy(&output.stdout);
    // It ran every operation and reported on them.
    assert!(
        text.contains(&format!("Tested: {}", operations - 2)),
        "{text}"
    );
    assert!(!text.contains("failures"), "{text}");
    let junit = std::fs::read_to_string(reports.path().join("junit.xml")).unwrap();
    assert!(junit.contains("failures=\"0\""), "{junit}");
    assert!(junit.contains("errors=\"0\""), "{junit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_typescript_client_drives_a_run() {
    let tools = tools();
    let db = TestDb::new(StoreKind::Sqlite).await;
    let server = server(&db).await;
    let bin = tools.join("apiclient/node_modules/.bin");
    // Inside .tools/apiclient so that node and tsc find its node_modules.
    let dir = tempfile::Builder::new()
        .prefix("client-")
        .tempdir_in(tools.join("apiclient"))
        .unwrap();
    std::fs::write(
        dir.path().join("client.mts"),
        include_str!("api_client/client.mts"),
    )
    .unwrap();
    run(
        Command::new(bin.join("openapi-typescript"))
            .arg(format!("{}/openapi.json", server.base_url))
            .arg("--output")
            .arg(dir.path().join("api.d.mts")),
        "openapi-typescript",
        Duration::from_secs(60),
    )
    .await;
    run(
        Command::new(bin.join("tsc"))
            .args(["--strict", "--noEmitOnError", "--skipLibCheck"])
            .args(["--target", "es2022", "--module", "nodenext"])
            .args(["--moduleResolution", "nodenext"])
            .arg("client.mts")
            .current_dir(dir.path()),
        "tsc",
        Duration::from_secs(120),
    )
    .await;
    let output = run(
        Command::new("node")
            .arg("client.mjs")
            .env("DRAFTSMITH_URL", &server.base_url)
            .env("DRAFTSMITH_TOKEN", ADMIN_TOKEN)
            .current_dir(dir.path()),
        "the generated client",
        Duration::from_secs(60),
    )
    .await;
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], "completed", "{report}");
    assert!(report["revision"].as_i64().unwrap() > 1, "{report}");
    assert_eq!(report["runs"], 1, "{report}");
    assert!(
        report["index"].as_str().unwrap().contains("My Demo Shop"),
        "the run's change is in the draft: {report}"
    );
}

/// The document states what the handlers do (issue 13, defect 8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_declares_what_the_handlers_enforce() {
    let server = draftsmith_testkit::TestServer::start(StoreKind::Sqlite).await;
    let doc: Value = server.admin().get("/openapi.json", 200).await;
    let op = |path: &str, method: &str| doc["paths"][path][method].clone();
    let param = |op: &Value, name: &str| {
        op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no parameter {name} in {op}"))
    };
    let apps = "/admin/apps/{app_id}";
    for (path, names) in [
        ("/coding-agent/runs", &["limit", "before"][..]),
        ("/coding-agent/checkpoints", &["limit", "before"]),
        (
            "/coding-agent/checkpoints/{checkpoint_id}/diff",
            &["against"],
        ),
        ("/coding-agent/runs/{run_id}/stream", &["after"]),
        ("/draft", &["revision"]),
    ] {
        let op = op(&format!("{apps}{path}"), "get");
        for name in names {
            let p = param(&op, name);
            assert_eq!(p["in"], "query", "{path} {name}");
            assert_ne!(p["required"], true, "{path} {name}");
        }
    }
    // Every operation documents its errors; every authenticated one its 401.
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("500"), "{method} {path}");
            let open = op["security"] == serde_json::json!([{}]);
            assert_eq!(
                responses.contains_key("401"),
                !open
                    || path.starts_with("/preview")
                    || path == "/auth/session" && method == "post",
                "{method} {path}"
            );
            if op.get("requestBody").is_some() {
                assert!(responses.contains_key("413"), "{method} {path}");
            }
        }
    }
    assert!(operations >= 42, "{operations}");
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["CreateApp"]["properties"]["name"]["maxLength"], 100);
    assert_eq!(
        schemas["CreateApp"]["properties"]["template"]["enum"],
        serde_json::json!(["vite-react", "static"])
    );
    assert!(schemas["CreateToken"]["properties"]["user"]["pattern"].is_string());
    assert_eq!(
        schemas["CreateRun"]["properties"]["input"]["maxLength"],
        100_000
    );
    let put = op(&format!("{apps}/draft/files/{{path}}"), "put");
    let if_match = param(&put, "If-Match");
    assert_eq!(
        (if_match["in"].clone(), if_match["required"].clone()),
        ("header".into(), true.into())
    );
    let read = op(&format!("{apps}/draft/files/{{path}}"), "get");
    assert!(
        read["responses"]["200"]["content"].get("*/*").is_some(),
        "{read}"
    );
    let preview = op("/preview/{app_id}/{token}/{path}", "get");
    assert!(
        preview["responses"]["200"]["content"]
            .get("text/*")
            .is_some()
    );

    // A stored tool and agent as answered validate against their documented schemas.
    let admin = server.admin();
    let tool: Value = admin
        .post(
            "/admin/tools",
            &serde_json::json!({"name": "t", "input_schema": {"type": "object"},
                "output_schema": {"type": "object"}, "x-ui": {"kind": "table"}}),
            201,
        )
        .await;
    let agent: Value = admin
        .post(
            "/admin/agents",
            &serde_json::json!({"name": "a", "tools": ["t"]}),
            201,
        )
        .await;
    for (value, name) in [(tool, "RuntimeTool"), (agent, "RuntimeAgent")] {
        let mut schema = schemas[name].clone();
        schema["components"] = doc["components"].clone();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?} for {value}");
    }
}
