//! Every validation failure class for every tool: the envelope names the field, and
//! nothing ran or changed.

use draftsmith_tools::ToolOutcome;
use serde_json::{Value, json};

use crate::common::{Sandbox, call, snapshot};

/// (tool, valid arguments that would change the workspace, its required fields, a path-ish field)
fn tools() -> Vec<(&'static str, Value, Vec<&'static str>, &'static str)> {
    vec![
        ("list", json!({"path": "."}), vec![], "path"),
        ("read", json!({"path": "a.txt"}), vec!["path"], "path"),
        (
            "search",
            json!({"pattern": "a"}),
            vec!["pattern"],
            "pattern",
        ),
        ("glob", json!({"pattern": "*"}), vec!["pattern"], "pattern"),
        (
            "write",
            json!({"path": "new.txt", "content": "x"}),
            vec!["path", "content"],
            "path",
        ),
        (
            "apply_patch",
            json!({"patch": "*** Begin Patch\n*** Add File: new.txt\n+x\n*** End Patch"}),
            vec!["patch"],
            "patch",
        ),
        ("delete", json!({"path": "a.txt"}), vec!["path"], "path"),
        (
            "rename",
            json!({"from_path": "a.txt", "to_path": "b.txt"}),
            vec!["from_path", "to_path"],
            "from_path",
        ),
        (
            "run_command",
            json!({"command": "touch ran.txt"}),
            vec!["command"],
            "command",
        ),
    ]
}

fn assert_invalid(outcome: &ToolOutcome, field: Option<&str>, what: &str) {
    assert_eq!(outcome.output["ok"], false, "{what}: {}", outcome.output);
    let error = &outcome.output["error"];
    assert_eq!(
        error["code"], "CODING_AGENT_TOOL_INPUT_INVALID",
        "{what}: {}",
        outcome.output
    );
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}"
    );
    match field {
        Some(field) => assert_eq!(error["field"], field, "{what}: {}", outcome.output),
        None => assert!(error.get("field").is_none(), "{what}: {}", outcome.output),
    }
    let keys: Vec<&String> = outcome.output.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["error", "ok"], "{what}");
    assert!(outcome.error.is_some());
}

#[test]
fn each_failure_class_is_reported_and_runs_nothing() {
    for (tool, valid, required, path_field) in tools() {
        let sandbox = Sandbox::new();
        sandbox.put("a.txt", "a\n");
        let ctx = sandbox.ctx();
        let before = snapshot(&sandbox.ws());
        let mut cases: Vec<(String, String, Option<String>)> = Vec::new();
        for field in &required {
            let mut args = valid.clone();
            args.as_object_mut().unwrap().remove(*field);
            cases.push((
                format!("missing {field}"),
                args.to_string(),
                Some(field.to_string()),
            ));
        }
        let mut wrong = valid.clone();
        wrong[path_field] = json!(42);
        cases.push((
            "wrong type".into(),
            wrong.to_string(),
            Some(path_field.into()),
        ));
        let mut wrong = valid.clone();
        wrong[path_field] = json!(["a"]);
        cases.push((
            "array for string".into(),
            wrong.to_string(),
            Some(path_field.into()),
        ));
        let mut unknown = valid.clone();
        unknown["bogus"] = json!(1);
        cases.push((
            "unknown field".into(),
            unknown.to_string(),
            Some("bogus".into()),
        ));
        let mut empty = valid.clone();
        empty[path_field] = json!("");
        cases.push(("empty".into(), empty.to_string(), Some(path_field.into())));
        let text = valid.to_string();
        cases.push(("malformed".into(), text[..text.len() - 1].to_owned(), None));
        cases.push(("not an object".into(), "[1, 2]".into(), None));
        cases.push(("trailing garbage".into(), format!("{text} x"), None));
        for (what, args, field) in cases {
            let outcome = call(&ctx, tool, &args);
            assert_invalid(&outcome, field.as_deref(), &format!("{tool}: {what}"));
            assert_eq!(
                snapshot(&sandbox.ws()),
                before,
                "{tool}: {what} changed the workspace"
            );
        }
        let outcome = call(&ctx, tool, &valid.to_string());
        assert!(
            outcome.is_ok(),
            "{tool}: the valid call failed: {}",
            outcome.output
        );
    }
}

#[test]
fn numeric_bounds_come_from_the_schema() {
    let sandbox = Sandbox::new();
    sandbox.put("a.txt", "a\n");
    let ctx = sandbox.ctx();
    let cases = [
        (
            "read",
            json!({"path": "a.txt", "start_line": 0}),
            "start_line",
        ),
        (
            "read",
            json!({"path": "a.txt", "start_line": -3}),
            "start_line",
        ),
        (
            "read",
            json!({"path": "a.txt", "start_line": 1.5}),
            "start_line",
        ),
        (
            "read",
            json!({"path": "a.txt", "start_line": 3, "end_line": 2}),
            "end_line",
        ),
        ("list", json!({"depth": 11}), "depth"),
        ("list", json!({"depth": 0}), "depth"),
        (
            "run_command",
            json!({"command": "touch ran.txt", "timeout_ms": 0}),
            "timeout_ms",
        ),
        (
            "run_command",
            json!({"command": "touch ran.txt", "timeout_ms": "5"}),
            "timeout_ms",
        ),
        ("search", json!({"pattern": "("}), "pattern"),
        (
            "search",
            json!({"pattern": "a", "glob": "[", "case_insensitive": true}),
            "glob",
        ),
        (
            "search",
            json!({"pattern": "a", "case_insensitive": "yes"}),
            "case_insensitive",
        ),
        ("glob", json!({"pattern": "a{"}), "pattern"),
        ("write", json!({"path": "x", "content": null}), "content"),
    ];
    for (tool, args, field) in cases {
        let outcome = crate::common::call_json(&ctx, tool, args.clone());
        assert_invalid(&outcome, Some(field), &format!("{tool} {args}"));
    }
    assert!(!sandbox.ws().join("ran.txt").exists());
}

#[test]
fn unknown_tool_names_the_name_field() {
    let sandbox = Sandbox::new();
    let outcome = call(&sandbox.ctx(), "rm_rf", "{}");
    assert_invalid(&outcome, Some("name"), "unknown tool");
    assert!(
        outcome.output["error"]["message"]
            .as_str()
            .unwrap()
            .contains("apply_patch")
    );
}

#[test]
fn empty_arguments_mean_an_empty_object() {
    let sandbox = Sandbox::new();
    sandbox.put("a.txt", "a\n");
    let outcome = call(&sandbox.ctx(), "list", "");
    assert!(outcome.is_ok(), "{}", outcome.output);
    let outcome = call(&sandbox.ctx(), "read", " ");
    assert_invalid(&outcome, Some("path"), "read without arguments");
}
