//! The sandbox as a trust boundary, seen from real native runs through the service
//! (issue 15): commands run as an unprivileged uid whose files still sync into the draft,
//! and a sandbox's fork bomb, memory hog and oversized writes hit its own limits, named in
//! the tool result, while another run completes and `/healthz` keeps answering.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use draftsmith_core::{ErrorCode, EventBody, RunEvent};
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_testkit::server::config_for_model;
use draftsmith_testkit::sse::collect;
use draftsmith_testkit::{StoreKind, TestServer};
use serde_json::{Value, json};

use crate::runs::{capabilities, new_app, start_run};

/// Sandbox uids of these tests, apart from every other test's.
const UID_BASE: u32 = 3_100_000;
/// Those of the limits test alone, whose count of leftover processes must not see the
/// OpenCode server of a test running beside it.
const LIMITS_UID_BASE: u32 = 3_200_000;

/// A scenario answering prompts that contain `tag`: one `run_command`, then a text.
fn scenario(tag: &str, command: &str) -> Value {
    json!({"name": tag, "match": {"contains": tag}, "turns": [
        {"steps": [{"tool_call": {"id": format!("call_{tag}"), "name": "run_command",
            "arguments": {"command": command, "timeout_ms": 60000}}}]},
        {"steps": [{"text": format!("{tag} done")}]}
    ]})
}

/// A server whose sandboxes get uids from [`UID_BASE`] and, when `small`, the test's small
/// limits (64 processes, 64 MiB, 8 MiB of disk); otherwise the defaults (OpenCode's server
/// needs more than 64 MiB).
async fn bounded_server(
    scenarios: Vec<Value>,
    small: bool,
    uid_base: u32,
) -> (TestServer, MockModel) {
    let script = json!({ "scenarios": scenarios });
    let model = MockModel::start(Script::from_json(&script.to_string()).unwrap())
        .await
        .unwrap();
    let mut config = config_for_model(&model.base_url());
    if small {
        config.sandbox.limits.processes = 64;
        config.sandbox.limits.memory_mib = 64;
        config.sandbox.limits.disk_mib = 8;
    }
    config.sandbox.identity.uid_base = uid_base;
    config.sandbox.identity.uid_count = 100;
    (
        TestServer::start_with(StoreKind::Sqlite, config).await,
        model,
    )
}

/// The first `run_command` result's `(exit_code, output)`.
fn command_result(events: &[RunEvent]) -> (Value, String) {
    let output = events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::ToolCompleted { output, .. } => Some(output.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the command ran: {events:?}"));
    (
        output["exit_code"].clone(),
        output["output"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The output of OpenCode's first `bash` call, as JSON text.
pub(crate) fn bash_output(events: &[RunEvent]) -> String {
    events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::ToolCompleted { tool, output, .. } if tool == "bash" => {
                Some(output.to_string())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("the bash tool ran: {events:#?}"))
}

/// The sandbox the run worked in.
fn sandbox_of(events: &[RunEvent]) -> draftsmith_sandbox::SandboxId {
    events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::RunStarted { sandbox_id } => {
                draftsmith_sandbox::SandboxId::parse(sandbox_id).ok()
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("the run started in a sandbox: {events:#?}"))
}

fn completed(events: &[RunEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e.body, EventBody::RunCompleted { .. }))
}

/// Host processes now, and those running as one of the limits test's sandbox uids.
fn processes() -> (usize, usize) {
    let (mut all, mut ours) = (0, 0);
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.parse::<u32>().is_ok())
        {
            all += 1;
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok());
            if uid.is_some_and(|u| (LIMITS_UID_BASE..LIMITS_UID_BASE + 100).contains(&u)) {
                ours += 1;
            }
        }
    }
    (all, ours)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_commands_are_unprivileged_and_their_files_sync() {
    let (server, _model) = bounded_server(
        vec![scenario(
            "WHO",
            "echo UID=$(id -u); cat /etc/shadow || echo SHADOW-REFUSED; echo made-inside > made.txt",
        )],
        true,
        UID_BASE,
    )
    .await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "WHO are you"})).await;
    let events = collect(&admin, &run.stream_url, None).await;
    let (code, output) = command_result(&events);
    assert_eq!(code, json!(0), "{output}");
    // stdout and stderr come through separate pipes: the line's place is not fixed.
    let uid: u32 = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("UID="))
        .unwrap_or_else(|| panic!("no UID= line in {output:?}"))
        .parse()
        .unwrap();
    assert!((UID_BASE..UID_BASE + 100).contains(&uid), "{output}");
    assert!(
        output.contains("SHADOW-REFUSED") && !output.contains("root:"),
        "{output}"
    );
    assert!(completed(&events), "{events:?}");
    let (bytes, _) = admin
        .get_bytes(&format!("/admin/apps/{}/draft/files/made.txt", app.id))
        .await;
    assert_eq!(
        bytes, b"made-inside\n",
        "the sandbox's file reached the draft"
    );
    let caps = capabilities(&admin, &app).await;
    let limits = &caps["sandbox_limits"];
    assert_eq!(limits["identity"], "per_sandbox_uid", "{caps}");
    assert_eq!(limits["processes"]["value"], 64);
    for limit in ["processes", "memory_mib", "cpu_shares"] {
        let by = limits[limit]["mechanism"].as_str().unwrap();
        assert!(by.starts_with("cgroup_v"), "{limit} by {by}");
    }
    assert_eq!(limits["disk_mib"]["mechanism"], "rlimit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sandbox_hitting_its_limits_leaves_the_others_and_the_host_alone() {
    let mark = 7_300_000 + std::process::id() % 100_000;
    let (server, _model) = bounded_server(
        vec![
            scenario("BOMB", &format!("while :; do sleep {mark} & done")),
            scenario(
                "CALM",
                "for i in 1 2 3 4 5; do sh -c 'echo step'; done; echo CALM-OK",
            ),
            scenario(
                "HOG",
                "python3 -c 'b = b\"x\" * (256 << 20); print(\"ALLOCATED\")'",
            ),
            scenario(
                "DISK",
                "head -c 16777216 /dev/zero > big.bin; echo status=$?; rm -f big.bin",
            ),
            scenario(
                "BULK",
                "for f in a b c; do head -c 3000000 /dev/zero > $f.bin; done; echo WROTE",
            ),
        ],
        true,
        LIMITS_UID_BASE,
    )
    .await;
    let (before, _) = processes();
    let admin = server.admin();
    let (bomb_app, calm_app) = (
        new_app(&admin, "static").await,
        new_app(&admin, "static").await,
    );

    let (healthy, sick) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let stop = tokio_util::sync::CancellationToken::new();
    let poller = {
        let (anonymous, healthy, sick, stop) = (
            server.anonymous(),
            healthy.clone(),
            sick.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let answered = tokio::time::timeout(
                    Duration::from_secs(2),
                    anonymous.get::<Value>("/healthz", 200),
                )
                .await;
                let counter = if answered.is_ok() { &healthy } else { &sick };
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // The poller answers before the abuse starts; at least one more answer must come while
    // it goes on (a fixed count would assume how long the runs take).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while healthy.load(Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "/healthz never answered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answered_before = healthy.load(Ordering::SeqCst);
    // The bomb and an ordinary run start at the same moment, in two sandboxes.
    let (bomb, calm) = tokio::join!(
        start_run(&admin, &bomb_app, json!({"input": "BOMB it"})),
        start_run(&admin, &calm_app, json!({"input": "CALM please"})),
    );
    let (bomb_events, calm_events) = tokio::join!(
        collect(&admin, &bomb.stream_url, None),
        collect(&admin, &calm.stream_url, None),
    );
    let (code, output) = command_result(&bomb_events);
    assert_ne!(code, json!(0), "{output}");
    assert!(
        output.contains("the sandbox's process limit (64) was reached"),
        "{output}"
    );
    let (code, output) = command_result(&calm_events);
    assert_eq!(code, json!(0), "{output}");
    assert!(
        output.contains("CALM-OK") && completed(&calm_events),
        "{output}"
    );

    let mut later = Vec::new();
    for tag in ["HOG", "DISK", "BULK"] {
        let run = start_run(&admin, &bomb_app, json!({"input": format!("{tag} now")})).await;
        later.push(collect(&admin, &run.stream_url, None).await);
    }
    let (code, output) = command_result(&later[0]);
    assert_ne!(code, json!(0), "{output}");
    assert!(!output.contains("ALLOCATED"), "{output}");
    assert!(
        output.contains("the sandbox's memory limit (64 MiB) was exceeded"),
        "{output}"
    );
    let (_, output) = command_result(&later[1]);
    assert!(
        output.contains("File too large") && output.contains("status=1"),
        "{output}"
    );
    assert!(completed(&later[1]), "a refused write is not a failed run");
    let refused = later[2].iter().find_map(|e| match &e.body {
        EventBody::RunFailed { error, .. } => Some(error.clone()),
        _ => None,
    });
    let refused = refused.unwrap_or_else(|| panic!("an oversize workspace synced: {:?}", later[2]));
    assert_eq!(
        refused.code,
        ErrorCode::CodingAgentWorkspaceTooLarge,
        "{refused:?}"
    );

    let answered_during = healthy.load(Ordering::SeqCst) - answered_before;
    stop.cancel();
    poller.await.unwrap();
    assert_eq!(sick.load(Ordering::SeqCst), 0, "/healthz stopped answering");
    assert!(
        answered_during > 0,
        "no health check was answered while the sandbox hit its limits"
    );
    let mut settled = processes();
    for _ in 0..50 {
        if settled.1 == 0 && settled.0 <= before + 16 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        settled = processes();
    }
    assert_eq!(settled.1, 0, "sandbox processes outlived their commands");
    assert!(
        settled.0 <= before + 16,
        "host processes: {before} before, {} after",
        settled.0
    );
}

/// OpenCode's own `bash` tool runs as the sandbox's uid too (the server itself does), and
/// what it writes reaches the draft.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencodes_bash_is_unprivileged_and_its_files_sync() {
    // `/etc/shadow` in octal escapes: OpenCode's permission rules match path strings and
    // would refuse a literal one, which proves nothing about the identity.
    let command = "id -u; cat \"$(printf '\\057etc\\057shadow')\" || echo SHADOW-REFUSED; \
                   echo from-opencode > oc.txt";
    let (server, _model) = bounded_server(
        vec![json!({"name": "probe", "turns": [
            {"steps": [{"tool_call": {"id": "call_who", "name": "bash", "arguments": {
                "command": command, "description": "Who runs this"}}}]},
            {"steps": [{"text": "probed"}]}
        ]})],
        false,
        UID_BASE,
    )
    .await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "who", "engine": "opencode"})).await;
    let events = collect(&admin, &run.stream_url, None).await;
    assert!(completed(&events), "{events:#?}");
    let output = bash_output(&events);
    assert!(
        output.contains("SHADOW-REFUSED") && !output.contains("root:"),
        "{output}"
    );
    let uid = output
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok())
        .find(|n| (UID_BASE..UID_BASE + 100).contains(n));
    assert!(uid.is_some(), "not a sandbox uid: {output}");
    let (bytes, _) = admin
        .get_bytes(&format!("/admin/apps/{}/draft/files/oc.txt", app.id))
        .await;
    assert_eq!(bytes, b"from-opencode\n");
}

/// A command nests directories 30,000 deep (in about two seconds): the run still lands
/// what it can (the deep file cannot be a draft path), and stopping the sandbox deletes the
/// whole tree. A recursive walk or delete of the service overflowed its stack here and
/// aborted the process (the test with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_nesting_directories_without_end_leaves_the_service_up() {
    let nest = "echo top > top.txt; perl -e 'for (1..30000) { mkdir \"d\" or die \"mkdir: $!\"; \
                chdir \"d\" or die \"chdir: $!\" } open(my $f, \">\", \"deep.txt\") or die; \
                print $f \"deep\\n\"; print \"NESTED\\n\"'";
    let (server, _model) = bounded_server(vec![scenario("NEST", nest)], false, UID_BASE + 50).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "NEST deep"})).await;
    let events = collect(&admin, &run.stream_url, None).await;
    let (code, output) = command_result(&events);
    assert_eq!(code, json!(0), "{output}");
    assert!(output.contains("NESTED"), "{output}");
    assert!(completed(&events), "{events:?}");
    let (bytes, _) = admin
        .get_bytes(&format!("/admin/apps/{}/draft/files/top.txt", app.id))
        .await;
    assert_eq!(bytes, b"top\n");
    let id = sandbox_of(&events);
    let controller = server.state.runner.controller();
    let workspace = controller.workspace_dir(&id).unwrap();
    assert!(workspace.join("d/d/d").is_dir());
    controller.stop(&id).await.unwrap();
    let root = workspace.parent().and_then(Path::parent).unwrap();
    let left: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with(".spare-"))
        .collect();
    assert_eq!(
        left,
        Vec::<String>::new(),
        "the stopped sandbox's tree is gone"
    );
    let _: Value = server.anonymous().get("/healthz", 200).await;
}

/// The same through OpenCode's `bash`, in the workspace and in the server's HOME (deleted
/// when the service stops its servers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencodes_bash_nesting_directories_without_end_leaves_the_service_up() {
    let perl = "perl -e 'for (1..30000) { mkdir \"d\" or die \"mkdir: $!\"; \
                chdir \"d\" or die \"chdir: $!\" } print \"NESTED\\n\"'";
    let command = format!("echo top > top.txt; {perl}; cd \"$HOME\" && {perl}");
    let (server, _model) = bounded_server(
        vec![json!({"name": "nest", "turns": [
            {"steps": [{"tool_call": {"id": "call_nest", "name": "bash", "arguments": {
                "command": command, "description": "Nest directories"}}}]},
            {"steps": [{"text": "nested"}]}
        ]})],
        false,
        UID_BASE + 60,
    )
    .await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "nest", "engine": "opencode"})).await;
    let events = collect(&admin, &run.stream_url, None).await;
    assert!(completed(&events), "{events:#?}");
    let output = bash_output(&events);
    assert_eq!(output.matches("NESTED").count(), 2, "{output}");
    let (bytes, _) = admin
        .get_bytes(&format!("/admin/apps/{}/draft/files/top.txt", app.id))
        .await;
    assert_eq!(bytes, b"top\n");
    let _: Value = server.anonymous().get("/healthz", 200).await;
    let id = sandbox_of(&events);
    server.state.runner.controller().stop(&id).await.unwrap();
    // Stopping the service stops its OpenCode servers and deletes their HOMEs. A deep HOME
    // left behind would abort the test's own clean-up of its data directory (the temporary
    // directory's `std::fs::remove_dir_all`), as it did before the sandbox was stopped.
    server.shutdown().await;
}
