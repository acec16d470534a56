//! A run on the real OpenCode engine through the service: the scripted model drives
//! OpenCode's own tools, and the result lands in the draft like any other run.

use draftsmith_core::api::Run;
use draftsmith_core::{EventBody, RunStatus};
use draftsmith_testkit::sse::collect;
use draftsmith_testkit::{StoreKind, TestServer};
use serde_json::{Value, json};

use crate::runs::{capabilities, completed_run, deltas, new_app, start_run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opencode_run_lands_in_the_draft() {
    let script = json!({"scenarios": [{"name": "opencode-write", "turns": [
        {"steps": [
            {"text": "Adding a greeting.", "chunk": 4},
            {"tool_call": {"id": "call_write", "name": "write", "arguments": {
                "filePath": "src/Hello.jsx", "content": "export const Hello = () => <p>Hello</p>;\n"}}}
        ]},
        {"steps": [{"text": "Added src/Hello.jsx.", "chunk": 5}]}
    ]}]});
    let server = TestServer::with_script(StoreKind::Sqlite, &script.to_string()).await;
    let admin = server.admin();
    let app = new_app(&admin, "vite-react").await;
    let caps = capabilities(&admin, &app).await;
    assert_eq!(
        caps["opencode_policy"]["available"], true,
        "run scripts/install-opencode: {caps}"
    );
    let (run, events) = completed_run(
        &admin,
        &app,
        json!({"input": "greet", "engine": "opencode"}),
    )
    .await;
    let text = deltas(&events);
    assert_eq!(text, "Adding a greeting.Added src/Hello.jsx.");
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.body, EventBody::ToolCompleted { tool, .. } if tool == "write"))
    );
    // The seeded `.opencode/` files came with the template: only the agent's edit is new.
    let synced = events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::DraftSynced {
                added,
                modified,
                deleted,
                ..
            } => Some((added.clone(), modified.clone(), deleted.clone())),
            _ => None,
        })
        .expect("draft.synced");
    assert_eq!(
        synced,
        (vec!["src/Hello.jsx".to_owned()], Vec::new(), Vec::new())
    );
    let (hello, _) = admin
        .get_bytes(&format!("/admin/apps/{}/draft/files/src/Hello.jsx", app.id))
        .await;
    assert!(String::from_utf8(hello).unwrap().contains("Hello"));
    let finished: Run = admin
        .get(
            &format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id),
            200,
        )
        .await;
    assert_eq!(finished.status, RunStatus::Completed);
    assert!(
        finished
            .timing_metrics_ms
            .get("opencode_start")
            .is_some_and(Value::is_u64),
        "{:?}",
        finished.timing_metrics_ms
    );
    // The context file the seeded OpenCode tools read holds the run's contract.
    let file = server
        .db
        .dir
        .path()
        .join("sandboxes")
        .join(format!("chat-{}", run.chat_session_id))
        .join("workspace")
        .join(draftsmith_tools::CONTRACT_FILE);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(
        written,
        finished.input_params["context"]["selected_agent_contract"]
    );
    server.shutdown().await;
}

/// OpenCode's `glob` and `grep` run ripgrep, which OpenCode downloads from GitHub when it
/// is not on the PATH; a sandbox cannot reach GitHub, so without the system's `rg` visible
/// inside it both tools fail every call ("ripgrep execution failed").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencodes_search_tools_work_in_the_sandbox() {
    let script = json!({"scenarios": [{"name": "opencode-search", "turns": [
        {"steps": [{"tool_call": {"id": "call_glob", "name": "glob", "arguments": {
            "pattern": "src/*.jsx"}}}]},
        {"steps": [{"tool_call": {"id": "call_grep", "name": "grep", "arguments": {
            "pattern": "My App", "include": "*.jsx"}}}]},
        {"steps": [{"text": "Found it.", "chunk": 4}]}
    ]}]});
    let server = TestServer::with_script(StoreKind::Sqlite, &script.to_string()).await;
    let admin = server.admin();
    let app = new_app(&admin, "vite-react").await;
    let (_, events) = completed_run(
        &admin,
        &app,
        json!({"input": "find the heading", "engine": "opencode"}),
    )
    .await;
    let output = |name: &str| {
        events
            .iter()
            .find_map(|e| match &e.body {
                EventBody::ToolCompleted { tool, output, .. } if tool == name => {
                    Some(output.to_string())
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no completed {name}: {events:#?}"))
    };
    let found = output("glob");
    assert!(
        found.contains("src/App.jsx") && found.contains("src/main.jsx"),
        "{found}"
    );
    let matched = output("grep");
    assert!(matched.contains("App.jsx"), "{matched}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(&e.body, EventBody::ToolFailed { .. })),
        "{events:#?}"
    );
    server.shutdown().await;
}

/// An uploaded image reaches the model through OpenCode: sent as an OpenCode file part
/// with a `data:` URL, it arrives at the OpenAI-compatible model as an `image_url` part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_image_reaches_the_model_through_opencode() {
    use crate::attachments::{PNG, as_upload, server_with_vision, upload_raw};
    use base64::Engine as _;
    let script = json!({"scenarios": [{"name": "look", "match": {"contains": "MOCKUP"},
        "turns": [{"steps": [{"text": "Nice mock-up."}]}]}]});
    let server = server_with_vision(StoreKind::Sqlite, &script.to_string(), None).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let png = as_upload(upload_raw(&admin, &app, "mockup.png", "image/png", PNG, 201).await);
    let run = start_run(
        &admin,
        &app,
        json!({"input": "Copy the MOCKUP.", "engine": "opencode", "model_id": "mock/other",
               "attachments": [png.id]}),
    )
    .await;
    let events = collect(&admin, &run.stream_url, None).await;
    assert_eq!(
        events.last().unwrap().body.event_type(),
        "run.completed",
        "{events:#?}"
    );
    let expected = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(PNG)
    );
    let requests = server.model().requests();
    let look: Vec<_> = requests.iter().filter(|r| r.scenario == "look").collect();
    assert!(!look.is_empty(), "the model was asked");
    let messages = look[0].body["messages"].as_array().unwrap();
    let user = messages.iter().rev().find(|m| m["role"] == "user").unwrap();
    let parts = user["content"]
        .as_array()
        .expect("a multi-part user message");
    let image = parts
        .iter()
        .find(|p| p["type"] == "image_url")
        .unwrap_or_else(|| panic!("no image part in {parts:?}"));
    assert_eq!(image["image_url"]["url"], expected);
    assert!(
        parts
            .iter()
            .any(|p| p["type"] == "text" && p["text"].as_str().unwrap().contains("MOCKUP"))
    );
    server.shutdown().await;
}

/// The OpenCode server is a service of its sandbox: confined like the sandbox's commands
/// (its own `bash` tool cannot see the service's data or another chat's sandbox), its HOME
/// inside the sandbox's directory, and gone with the sandbox when a run fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_opencode_server_is_confined_and_dies_with_its_sandbox() {
    let server = TestServer::with_script(
        StoreKind::Sqlite,
        "{\"scenarios\": [{\"name\": \"idle\", \"turns\": []}]}",
    )
    .await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let data = server.db.dir.path().to_path_buf();
    std::fs::write(data.join("tokens.txt"), "service secret").unwrap();
    let other = data.join("sandboxes").join("chat-other").join("workspace");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("secret.txt"), "other sandbox secret").unwrap();
    // Paths spelled in octal escapes: OpenCode's own permission rules match path strings in
    // commands and would refuse a literal one, which proves nothing about the confinement.
    let hidden = |path: &std::path::Path| {
        let octal: String = path
            .display()
            .to_string()
            .bytes()
            .map(|b| format!("\\{b:03o}"))
            .collect();
        format!("\"$(printf '{octal}')\"")
    };
    let command = format!(
        "cat {db} || echo NO_DB; cat {tokens} || echo NO_TOKENS; cat {secret} || echo NO_OTHER; \
         echo mine > own.txt && cat own.txt; echo \"PATH=$PATH\"",
        db = hidden(&data.join("draftsmith.db")),
        tokens = hidden(&data.join("tokens.txt")),
        secret = hidden(&other.join("secret.txt"))
    );
    let script = json!({"scenarios": [
        {"name": "fail", "match": {"contains": "ZZFAILZZ"}, "turns": [
            {"error": {"status": 400, "message": "scripted refusal"}}
        ]},
        {"name": "probe", "turns": [
            {"steps": [{"tool_call": {"id": "call_probe", "name": "bash", "arguments": {
                "command": command, "description": "Probe what the sandbox can see"}}}]},
            {"steps": [{"text": "probed"}]}
        ]}
    ]});
    let model = draftsmith_mockmodel::MockModel::start(
        draftsmith_mockmodel::Script::from_json(&script.to_string()).unwrap(),
    )
    .await
    .unwrap();
    server.state.runner.replace_registry(
        draftsmith_testkit::server::config_for_model(&model.base_url())
            .model_registry(&|_| None, None)
            .unwrap(),
    );

    let probe = start_run(
        &admin,
        &app,
        json!({"input": "probe", "engine": "opencode"}),
    )
    .await;
    let events = collect(&admin, &probe.stream_url, None).await;
    assert_eq!(
        events.last().unwrap().body.event_type(),
        "run.completed",
        "{events:#?}"
    );
    let output = crate::boundary::bash_output(&events);
    for absent in ["NO_DB", "NO_TOKENS", "NO_OTHER"] {
        assert!(output.contains(absent), "{absent}: {output}");
    }
    assert!(
        !output.contains("service secret") && !output.contains("other sandbox secret"),
        "{output}"
    );
    assert!(
        output.contains("mine"),
        "the workspace is writable: {output}"
    );
    // Its tools see the sandbox's PATH, as the sandbox's own commands do, not the service's.
    let path = output
        .split("PATH=")
        .nth(1)
        .and_then(|rest| rest.split(['\\', '\n', '"']).next())
        .unwrap_or_default();
    assert_eq!(path, draftsmith_sandbox::SANDBOX_PATH, "{output}");

    // The server runs in another mount namespace, with its HOME in the sandbox.
    let sandbox = data
        .join("sandboxes")
        .join(format!("chat-{}", probe.chat_session_id));
    let servers = opencode_servers_in(&sandbox);
    assert_eq!(servers.len(), 1, "one server for the sandbox: {servers:?}");
    let pid = servers[0];
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/mnt")).unwrap();
    assert_ne!(ns(&pid.to_string()), ns("self"), "confined by bubblewrap");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let home = environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"HOME="))
        .map(|h| String::from_utf8_lossy(h).into_owned())
        .unwrap();
    assert!(
        std::path::Path::new(&home).starts_with(&sandbox),
        "HOME {home} is inside {}",
        sandbox.display()
    );
    // Its model requests reached the gate's own listener in the sandbox's namespace: no
    // forwarder runs for them (the one forwarder is the way in, to its API).
    let forwarders: Vec<String> = draftsmith_opencode::descendants(pid)
        .into_iter()
        .filter_map(|p| std::fs::read(format!("/proc/{p}/cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.starts_with("socat"))
        .collect();
    assert!(
        !forwarders.is_empty() && forwarders.iter().all(|c| !c.contains("gate")),
        "{forwarders:?}"
    );

    // A failed run in the same chat stops the sandbox and its server.
    let failing = start_run(
        &admin,
        &app,
        json!({"input": "ZZFAILZZ now", "engine": "opencode", "chat_session_id": probe.chat_session_id}),
    )
    .await;
    let events = collect(&admin, &failing.stream_url, None).await;
    assert_eq!(
        events.last().unwrap().body.event_type(),
        "run.failed",
        "{events:#?}"
    );
    assert!(!draftsmith_opencode::is_running(pid), "the server died");
    assert!(!sandbox.exists(), "the sandbox is gone");
    server.shutdown().await;
}

/// With `[opencode] warm_chats = 1` a chat of each template is made ahead: its sandbox and
/// its confined OpenCode server start before any run. A new chat's first OpenCode run takes
/// it and runs on that very server, starting none of its own; a native run never takes it;
/// once the instance is idle again, the next one is made. Renewed while the instance idles,
/// one outlives the sandbox TTL. The `/metrics` gauge counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_chats_first_opencode_run_starts_on_a_server_made_ahead() {
    let script = json!({"scenarios": [{"name": "hello", "turns": [
        {"steps": [{"text": "Hello from a warm server."}]}
    ]}]});
    let model = draftsmith_mockmodel::MockModel::start(
        draftsmith_mockmodel::Script::from_json(&script.to_string()).unwrap(),
    )
    .await
    .unwrap();
    let mut config = draftsmith_testkit::server::config_for_model(&model.base_url());
    config.opencode.warm_chats = 1;
    // Idle sandboxes expire after 15 s: a chat made ahead lasts only by being renewed
    // (every 5 s, which a loaded CI host delays by seconds: 6 s lost chats there).
    config.sandbox.ttl = std::time::Duration::from_secs(15);
    let server = TestServer::start_with(StoreKind::Sqlite, config).await;
    let runner = server.state.runner.clone();
    let warm_chat = |other: Option<draftsmith_core::ChatSessionId>| {
        let runner = runner.clone();
        async move {
            for _ in 0..600 {
                let ready = runner.warm_chats("static");
                if let Some(chat) = ready.into_iter().find(|c| Some(*c) != other) {
                    return chat;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("no chat was made ahead within 60 s");
        }
    };
    let warm = warm_chat(None).await;
    let metrics = server
        .admin()
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("draftsmith_chats_made_ahead ")
                && l != "draftsmith_chats_made_ahead 0"),
        "{metrics}"
    );
    let sandbox = server
        .db
        .dir
        .path()
        .join("sandboxes")
        .join(format!("chat-{warm}"));
    let started = opencode_servers_in(&sandbox);
    assert_eq!(started.len(), 1, "one server started ahead: {started:?}");
    assert_eq!(nothing_installed(&sandbox), Ok(()));

    // Beyond its TTL; the native run's new sandbox reaps whatever expired meanwhile.
    tokio::time::sleep(std::time::Duration::from_secs(16)).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let (native, _) = completed_run(&admin, &app, json!({"input": "hi", "engine": "native"})).await;
    assert_ne!(
        native.chat_session_id, warm,
        "a native run starts its own chat"
    );
    assert_eq!(server.state.runner.warm_chats("static"), vec![warm]);

    let (run, events) =
        completed_run(&admin, &app, json!({"input": "hi", "engine": "opencode"})).await;
    assert_eq!(
        run.chat_session_id, warm,
        "the new chat is the one made ahead"
    );
    let text = deltas(&events);
    assert_eq!(text, "Hello from a warm server.");
    assert_eq!(
        opencode_servers_in(&sandbox),
        started,
        "the run ran on the server started ahead"
    );
    // The project's files were seeded before the server first opened the workspace, so
    // OpenCode installed nothing there (through the proxy, that took seconds).
    assert_eq!(nothing_installed(&sandbox), Ok(()));
    let next = warm_chat(Some(warm)).await;
    let next_sandbox = sandbox.with_file_name(format!("chat-{next}"));
    let next_servers = opencode_servers_in(&next_sandbox);
    assert_eq!(next_servers.len(), 1, "the next one has its server too");
    server.shutdown().await;
    for pid in started.into_iter().chain(next_servers) {
        assert!(
            !draftsmith_opencode::is_running(pid),
            "server {pid} outlived the service"
        );
    }
}

/// Whether the project's `.opencode/node_modules` of the sandbox at `sandbox` was seeded
/// before its server opened the workspace, and is still empty: else OpenCode installs its
/// plugin package there, through the proxy, for seconds.
fn nothing_installed(sandbox: &std::path::Path) -> Result<(), String> {
    let dir = sandbox.join("workspace/.opencode/node_modules");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let installed: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
    match installed.is_empty() {
        true => Ok(()),
        false => Err(format!("OpenCode installed {installed:?}")),
    }
}

/// Pids of `opencode` processes working in `dir` (their HOME or cwd under it).
fn opencode_servers_in(dir: &std::path::Path) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let argv: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_server = argv.first().is_some_and(|a| a.ends_with("opencode"))
            && argv.iter().any(|a| a == "serve");
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        if is_server && cwd.starts_with(dir) {
            found.push(pid);
        }
    }
    found
}

/// Two chats, two sandboxes, two confined OpenCode servers working at the same time; each
/// edit lands in its own app, and shutting the service down leaves no server behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sandboxes_run_two_servers_at_once() {
    let scenario = |name: &str| {
        json!({"name": name, "match": {"contains": name}, "turns": [
            {"steps": [
                {"text": format!("{name} starts.")},
                {"delay_ms": 1500},
                {"tool_call": {"id": format!("call_{name}"), "name": "write", "arguments": {
                    "filePath": format!("{name}.txt"), "content": format!("{name}\n")}}}
            ]},
            {"steps": [{"text": format!("{name} done.")}]}
        ]})
    };
    let script = json!({"scenarios": [scenario("ALPHA"), scenario("BETA")]});
    let server = TestServer::with_script(StoreKind::Sqlite, &script.to_string()).await;
    let admin = server.admin();
    let apps = [
        new_app(&admin, "static").await,
        new_app(&admin, "static").await,
    ];
    let runs = [
        start_run(
            &admin,
            &apps[0],
            json!({"input": "ALPHA", "engine": "opencode"}),
        )
        .await,
        start_run(
            &admin,
            &apps[1],
            json!({"input": "BETA", "engine": "opencode"}),
        )
        .await,
    ];
    let (alpha, beta) = tokio::join!(
        collect(&admin, &runs[0].stream_url, None),
        collect(&admin, &runs[1].stream_url, None)
    );
    for events in [&alpha, &beta] {
        assert_eq!(
            events.last().unwrap().body.event_type(),
            "run.completed",
            "{events:#?}"
        );
    }
    // The runs overlapped: each started before the other ended.
    let first = |events: &[draftsmith_core::RunEvent]| events[0].ts;
    let last = |events: &[draftsmith_core::RunEvent]| events.last().unwrap().ts;
    assert!(first(&alpha) < last(&beta) && first(&beta) < last(&alpha));
    for (app, name) in apps.iter().zip(["ALPHA", "BETA"]) {
        let (bytes, _) = admin
            .get_bytes(&format!("/admin/apps/{}/draft/files/{name}.txt", app.id))
            .await;
        assert_eq!(bytes, format!("{name}\n").into_bytes());
    }
    let data = server.db.dir.path().join("sandboxes");
    let pids: Vec<u32> = runs
        .iter()
        .map(|run| {
            let sandbox = data.join(format!("chat-{}", run.chat_session_id));
            let found = opencode_servers_in(&sandbox);
            assert_eq!(found.len(), 1, "one warm server in {}", sandbox.display());
            found[0]
        })
        .collect();
    assert_ne!(pids[0], pids[1]);
    server.shutdown().await;
    for pid in pids {
        assert!(
            !draftsmith_opencode::is_running(pid),
            "{pid} outlived the service"
        );
    }
}

/// `DRAFTSMITH_OPENCODE_BIN` naming a binary of another major line: the service starts,
/// says why in capabilities, and refuses OpenCode runs with that reason at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_opencode_binary_is_refused_at_start_up() {
    use std::os::unix::fs::PermissionsExt;
    let model = crate::instances::slow_model().await;
    let db = draftsmith_testkit::TestDb::new(StoreKind::Sqlite).await;
    let fake = db.dir.path().join("opencode-2");
    std::fs::write(&fake, "#!/bin/sh\necho 'opencode 2.1.0'\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = crate::instances::config_file(db.dir.path(), &model);
    let fake_env = fake.to_string_lossy().to_string();
    let server = crate::instances::start_with(
        &db,
        &db.dir.path().join("node"),
        &config,
        &[("DRAFTSMITH_OPENCODE_BIN", &fake_env)],
    )
    .await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let caps = capabilities(&admin, &app).await;
    let policy = &caps["opencode_policy"];
    assert_eq!(policy["available"], false, "{caps}");
    let reason = policy["unavailable_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("version 2.1.0") && reason.contains("1.x"),
        "{reason}"
    );
    let refused: Value = admin
        .post(
            &format!("/admin/apps/{}/coding-agent/runs", app.id),
            &json!({"input": "x", "engine": "opencode"}),
            400,
        )
        .await;
    let error = &refused["error"];
    assert_eq!(
        error["code"], "CODING_AGENT_ENGINE_UNAVAILABLE",
        "{refused}"
    );
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("version 2.1.0")),
        "{refused}"
    );
}
