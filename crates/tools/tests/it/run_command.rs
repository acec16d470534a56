//! `run_command` and the local runner: output, exit codes, bounds, and that a timeout or a
//! cancel kills the whole process group, grandchildren included.

use std::path::Path;
use std::time::{Duration, Instant};

use draftsmith_tools::{CommandRequest, CommandRunner, LocalCommandRunner, run_tool};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::common::{Sandbox, call_json, code};

/// State and process group of a live process; `None` once it is gone (or a zombie).
fn alive(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?;
    let pgrp = fields.nth(1)?.parse().ok()?;
    (state != "Z" && state != "X").then_some(pgrp)
}

/// Live processes whose process group is `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| alive(*pid) == Some(pgid))
        .collect()
}

/// The pid written to `path`, once the file holds one (the shell creates the file before
/// it writes the number).
fn pid_in(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn read_pid(path: &Path) -> i32 {
    pid_in(path).unwrap()
}

/// Waits (bounded) until no process of the group and neither pid is alive.
fn assert_all_dead(pgid: i32, pids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let survivors: Vec<i32> = group_members(pgid)
            .into_iter()
            .chain(pids.iter().copied().filter(|p| alive(*p).is_some()))
            .collect();
        if survivors.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "still alive: {survivors:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const GRANDCHILD: &str = "echo $$ > sh.pid; sleep 600 & echo $! > bg.pid; sleep 600";

#[test]
fn captures_output_and_exit_code() {
    let sandbox = Sandbox::new();
    let out = call_json(
        &sandbox.ctx(),
        "run_command",
        json!({"command": "echo out; echo err >&2; pwd; exit 3"}),
    );
    assert_eq!(out.output["ok"], true, "{}", out.output);
    assert_eq!(out.output["exit_code"], 3);
    let text = out.output["output"].as_str().unwrap();
    assert!(text.contains("out\n") && text.contains("err\n"), "{text}");
    assert!(
        text.contains(sandbox.ws().canonicalize().unwrap().to_str().unwrap()),
        "{text}"
    );
}

#[test]
fn output_keeps_the_tail() {
    let sandbox = Sandbox::new();
    let mut ctx = sandbox.ctx();
    ctx.limits.max_output_bytes = 100;
    let out = call_json(&ctx, "run_command", json!({"command": "seq 1 100000"}));
    let text = out.output["output"].as_str().unwrap();
    assert!(text.ends_with("99999\n100000\n"), "{text}");
    assert!(
        text.starts_with("[… ") && text.contains("truncated"),
        "{text}"
    );
    assert!(text.len() < 200, "{}", text.len());
}

#[test]
fn timeout_kills_the_group_and_grandchildren() {
    let sandbox = Sandbox::new();
    let started = Instant::now();
    let out = call_json(
        &sandbox.ctx(),
        "run_command",
        json!({"command": GRANDCHILD, "timeout_ms": 700}),
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(code(&out), "CODING_AGENT_TOOL_FAILED", "{}", out.output);
    assert!(
        out.output["error"]["message"]
            .as_str()
            .unwrap()
            .contains("time limit")
    );
    let sh = read_pid(&sandbox.ws().join("sh.pid"));
    let bg = read_pid(&sandbox.ws().join("bg.pid"));
    assert_all_dead(sh, &[sh, bg]);
}

#[test]
fn the_limit_caps_the_requested_timeout() {
    let sandbox = Sandbox::new();
    let mut ctx = sandbox.ctx();
    ctx.limits.command_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let out = call_json(
        &ctx,
        "run_command",
        json!({"command": "sleep 600", "timeout_ms": 600_000}),
    );
    assert_eq!(code(&out), "CODING_AGENT_TOOL_FAILED");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn background_processes_do_not_outlive_the_command() {
    let sandbox = Sandbox::new();
    let started = Instant::now();
    let out = call_json(
        &sandbox.ctx(),
        "run_command",
        json!({"command": "echo $$ > sh.pid; sleep 600 & echo $! > bg.pid; echo done"}),
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.output["exit_code"], 0, "{}", out.output);
    assert_eq!(out.output["output"], "done\n");
    let sh = read_pid(&sandbox.ws().join("sh.pid"));
    let bg = read_pid(&sandbox.ws().join("bg.pid"));
    assert_all_dead(sh, &[bg]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_the_group_and_grandchildren() {
    let sandbox = Sandbox::new();
    let ctx = sandbox.ctx();
    let cancel = ctx.cancel.clone();
    let ws = sandbox.ws();
    let task = tokio::spawn(async move {
        run_tool(
            &ctx,
            "run_command",
            &json!({"command": GRANDCHILD}).to_string(),
        )
        .await
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let (sh, bg) = loop {
        if let (Some(sh), Some(bg)) = (pid_in(&ws.join("sh.pid")), pid_in(&ws.join("bg.pid"))) {
            break (sh, bg);
        }
        assert!(Instant::now() < deadline, "the command never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(alive(bg).is_some());
    cancel.cancel();
    let out = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code(&out), "CODING_AGENT_TOOL_FAILED");
    assert!(
        out.output["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cancelled")
    );
    assert_all_dead(sh, &[sh, bg]);
}

#[tokio::test]
async fn local_runner_reports_everything() {
    let dir = tempfile::tempdir().unwrap();
    let request = CommandRequest {
        command: "printf %s \"$GREETING\"; kill -9 $$".into(),
        cwd: dir.path().to_path_buf(),
        timeout: Duration::from_secs(10),
        max_output_bytes: 1024,
        env: vec![("GREETING".into(), "hi".into())],
    };
    let out = LocalCommandRunner
        .run(request, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.output, "hi");
    assert_eq!(out.exit_code, None, "killed by a signal");
    assert!(!out.timed_out && !out.cancelled);
}
