//! The sandbox's network boundary seen from inside a real run: a native run's `run_command`
//! and OpenCode's own `bash` tool both find only loopback (the API, PostgreSQL, a metadata
//! endpoint and a private address all fail at once), the egress proxy answers a host off
//! the allow-list with its 403 text, `npm ci` of the `vite-react` template works through
//! it, and a sandboxed npm uses the registry the service user's npm is configured with.
//!
//! SAFETY: every probe first checks that it runs in a private network namespace (no route
//! at all, `lo` the only interface) and aborts before any connect otherwise, so a broken
//! confinement never sends a packet from the host to 169.254.x or a private range.

use std::time::Instant;

use draftsmith_core::EventBody;
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_testkit::server::config_for_model;
use draftsmith_testkit::sse::collect;
use draftsmith_testkit::{ApiClient, StoreKind, TestDb, TestServer};
use serde_json::{Value, json};

use crate::instances::{config_file, start_with};
use crate::runs::{capabilities, new_app, start_run};

/// Aborts (exit 97) unless this shell is in a private network namespace.
const ONLY_IN_A_PRIVATE_NAMESPACE: &str = "\
if [ \"$(grep -vc '^Iface' /proc/net/route)\" != 0 ] || [ \"$(grep -c ':' /proc/net/dev)\" != 1 ] \
|| ! grep -q '^ *lo:' /proc/net/dev; then echo NOT_PRIVATE_ABORT; exit 97; fi; echo PRIVATE_NS_OK";

/// The probe: four direct connects, timed, then three requests through the proxy.
fn probe_script(api_port: u16) -> String {
    format!(
        "{ONLY_IN_A_PRIVATE_NAMESPACE}
probe() {{ s=$(date +%s%N); if timeout 10 bash -c \"exec 3<>/dev/tcp/$1/$2\" 2>/dev/null; then r=OPEN; else r=CLOSED; fi; echo \"CONNECT $1:$2 $r $(( ($(date +%s%N)-s)/1000000 ))ms\"; }}
probe 127.0.0.1 {api_port}
probe 127.0.0.1 5432
probe 169.254.169.254 80
probe 10.20.30.40 80
echo OFF_LIST: $(curl -sS -x http://127.0.0.1:3128 http://not-on-the-list.example/ 2>&1)
echo LITERAL: $(curl -sS -x http://127.0.0.1:3128 http://169.254.169.254/latest/meta-data/ 2>&1)
echo LOOPBACK_NAME: $(curl -sS --noproxy '' -x http://127.0.0.1:3128 http://localhost:{api_port}/healthz 2>&1)
echo TUNNEL: $(bash -c 'exec 3<>/dev/tcp/127.0.0.1/3128; printf \"CONNECT 10.0.0.1:443 HTTP/1.1\\r\\n\\r\\n\" >&3; timeout 10 head -c 400 <&3' 2>&1)
echo PROBE_DONE"
    )
}

/// Checks a probe's output: the namespace check passed, every connect failed fast, and
/// every proxied request was refused with the text that names the host and the setting.
fn assert_confined(output: &str) {
    assert!(
        output.contains("PRIVATE_NS_OK"),
        "not in a private namespace: {output}"
    );
    assert!(output.contains("PROBE_DONE"), "{output}");
    let connects: Vec<&str> = output
        .lines()
        .filter(|l| l.starts_with("CONNECT "))
        .collect();
    assert_eq!(connects.len(), 4, "{output}");
    for line in connects {
        assert!(
            line.contains(" CLOSED "),
            "reachable from the sandbox: {line}"
        );
        let ms: u64 = line
            .rsplit(' ')
            .next()
            .and_then(|t| t.trim_end_matches("ms").parse().ok())
            .unwrap_or(u64::MAX);
        assert!(ms < 2_000, "did not fail fast: {line}");
    }
    let line = |prefix: &str| {
        output
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_default()
            .to_owned()
    };
    let off = line("OFF_LIST:");
    assert!(
        off.contains("not-on-the-list.example is not on the sandbox's egress allow-list")
            && off.contains("[sandbox.egress] allow"),
        "{output}"
    );
    assert!(
        line("LITERAL:").contains("169.254.169.254 is an IP address"),
        "{output}"
    );
    assert!(
        line("LOOPBACK_NAME:").contains("resolves to 127.0.0.1, a loopback address"),
        "{output}"
    );
    let tunnel = line("TUNNEL:");
    assert!(
        tunnel.contains("403 Forbidden") && tunnel.contains("10.0.0.1 is an IP address"),
        "{output}"
    );
}

fn api_port(server: &TestServer) -> u16 {
    server
        .base_url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("the API's port")
}

/// A server whose proxy allows the npm registry and `localhost` (so a name that resolves
/// to loopback is refused by its address, not by the list).
async fn probe_server() -> TestServer {
    let mut config = config_for_model("http://127.0.0.1:9/v1");
    config.sandbox.egress.allow = Some(vec!["registry.npmjs.org".into(), "localhost".into()]);
    TestServer::start_with(StoreKind::Sqlite, config).await
}

/// Makes the server's model call `tool` once with `arguments`, then answer text.
async fn script_tool(server: &TestServer, tool: &str, arguments: Value) -> MockModel {
    let script = json!({"scenarios": [{"name": "probe", "turns": [
        {"steps": [{"tool_call": {"id": "call_probe", "name": tool, "arguments": arguments}}]},
        {"steps": [{"text": "probed"}]}
    ]}]});
    let model = MockModel::start(Script::from_json(&script.to_string()).unwrap())
        .await
        .unwrap();
    server.state.runner.replace_registry(
        config_for_model(&model.base_url())
            .model_registry(&|_| None, None)
            .unwrap(),
    );
    model
}

/// Runs prompt `input` with `engine` in a new app of `template`; returns the first
/// completed tool's output.
async fn tool_output(admin: &ApiClient, template: &str, engine: &str, input: &str) -> String {
    let app = new_app(admin, template).await;
    let run = start_run(admin, &app, json!({"input": input, "engine": engine})).await;
    let events = collect(admin, &run.stream_url, None).await;
    assert_eq!(
        events.last().unwrap().body.event_type(),
        "run.completed",
        "{events:#?}"
    );
    events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::ToolCompleted { output, .. } => Some(match output {
                Value::String(text) => text.clone(),
                Value::Object(fields) => match fields.get("output") {
                    Some(Value::String(text)) => text.clone(),
                    _ => output.to_string(),
                },
                other => other.to_string(),
            }),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the tool ran: {events:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_command_reaches_only_loopback_and_the_proxy() {
    let server = probe_server().await;
    let command = probe_script(api_port(&server));
    let _model = script_tool(&server, "run_command", json!({"command": command})).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let caps = capabilities(&admin, &app).await;
    assert_eq!(caps["sandbox_egress"], "proxy", "{caps}");
    assert_eq!(
        caps["sandbox_egress_allow"],
        json!(["registry.npmjs.org", "localhost"])
    );
    // The control: the API answers on the host's loopback, where the sandbox cannot go.
    let health = reqwest::get(format!("{}/healthz", server.base_url))
        .await
        .unwrap();
    assert!(health.status().is_success());
    let output = tool_output(&server.admin(), "static", "native", "probe").await;
    assert_confined(&output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencode_bash_reaches_only_loopback_and_the_proxy() {
    let server = probe_server().await;
    let command = probe_script(api_port(&server));
    let arguments = json!({"command": command, "description": "Probe the sandbox's network"});
    let _model = script_tool(&server, "bash", arguments).await;
    let output = tool_output(&server.admin(), "static", "opencode", "probe").await;
    assert_confined(&output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_ci_of_the_vite_template_works_through_the_proxy() {
    let server = probe_server().await;
    let command = format!(
        "{ONLY_IN_A_PRIVATE_NAMESPACE}; echo \"proxy=$HTTPS_PROXY\"; rm -rf node_modules; \
         npm ci --no-audit --no-fund --loglevel=error && ls node_modules/.bin/vite && echo NPM_CI_OK"
    );
    let arguments = json!({"command": command, "timeout_ms": 290_000});
    let _model = script_tool(&server, "run_command", arguments).await;
    let started = Instant::now();
    let output = tool_output(&server.admin(), "vite-react", "native", "probe").await;
    assert!(output.contains("PRIVATE_NS_OK"), "{output}");
    assert!(output.contains("proxy=http://127.0.0.1:3128"), "{output}");
    assert!(
        output.contains("NPM_CI_OK"),
        "npm ci failed through the proxy: {output}"
    );
    eprintln!(
        "npm ci through the proxy: {} ms",
        started.elapsed().as_millis()
    );
}

/// An npm mirror configured only for the service user (its environment here, as its
/// `~/.npmrc` would be) is the allow-list's default entry and the registry a sandboxed npm
/// uses under both engines, though sandboxed processes see neither that environment nor
/// that HOME; the service user's npm credentials never reach them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxed_npm_uses_the_service_users_registry_without_its_credentials() {
    const MIRROR: &str = "http://NPM.mirror.example:4873/npm/";
    let command = format!(
        "{ONLY_IN_A_PRIVATE_NAMESPACE}; echo \"REGISTRY=$(npm config get registry)\"; \
         echo \"SECRETS=$(env | grep -c s3cret)\""
    );
    let scenario = |engine: &str, tool: &str, arguments: Value| {
        json!({"name": engine, "match": {"contains": format!("{engine} probe")}, "turns": [
            {"steps": [{"tool_call": {"id": "call_probe", "name": tool, "arguments": arguments}}]},
            {"steps": [{"text": "probed"}]}
        ]})
    };
    let script = json!({"scenarios": [
        scenario("native", "run_command", json!({"command": command})),
        scenario("opencode", "bash", json!({"command": command, "description": "Ask npm its registry"})),
    ]});
    let model = MockModel::start(Script::from_json(&script.to_string()).unwrap())
        .await
        .unwrap();
    let db = TestDb::new(StoreKind::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &model);
    let extra = [
        ("NPM_CONFIG_REGISTRY", MIRROR),
        ("NPM_CONFIG__AUTH", "s3cret-token"),
    ];
    let server = start_with(&db, &dir.path().join("data"), &config, &extra).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let caps = capabilities(&admin, &app).await;
    assert_eq!(caps["sandbox_egress"], "proxy", "{caps}");
    assert_eq!(caps["sandbox_egress_allow"], json!(["npm.mirror.example"]));
    for engine in ["native", "opencode"] {
        let input = format!("{engine} probe");
        let output = tool_output(&admin, "static", engine, &input).await;
        assert!(output.contains("PRIVATE_NS_OK"), "{engine}: {output}");
        assert!(
            output.contains("REGISTRY=http://npm.mirror.example:4873/npm/"),
            "{engine}: {output}"
        );
        assert!(output.contains("SECRETS=0"), "{engine}: {output}");
    }
}
