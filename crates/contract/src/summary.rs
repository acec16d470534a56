//! A bounded summary of a contract for a model: agent metadata, readiness, and each tool's
//! input and output fields flattened to `path: type` lines. Deep schemas stop at
//! [`MAX_DEPTH`] and wide ones at [`MAX_FIELDS`], and the cut is always marked.

use serde_json::{Value, json};

use crate::types::AgentContract;

/// Nesting levels of a schema listed before deeper fields are cut.
pub const MAX_DEPTH: usize = 3;
/// Fields listed per schema before the rest are cut.
pub const MAX_FIELDS: usize = 20;
/// Longest description kept.
pub const MAX_DESCRIPTION: usize = 300;

/// The summary `coding_agent_describe_selected_agent_contract` returns.
pub fn describe(contract: &AgentContract, include_unresolved: bool) -> Value {
    let Some(agent) = &contract.agent else {
        return json!({
            "agent": null,
            "runtime_ready": false,
            "tools": [],
            "note": "this app has no selected runtime agent",
        });
    };
    let tools: Vec<Value> = contract
        .tools
        .iter()
        .map(|tool| {
            let hint_kinds: Vec<Value> = tool
                .ui_hints
                .iter()
                .map(|h| json!({"location": h.location, "kind": serde_json::to_value(&h.hint).ok().and_then(|v| v.get("kind").cloned())}))
                .collect();
            json!({
                "name": tool.name,
                "description": shorten(&tool.description, MAX_DESCRIPTION),
                "input_fields": fields(&tool.input_schema),
                "output_fields": fields(&tool.output_schema),
                "ui_hints": hint_kinds,
            })
        })
        .collect();
    let mut summary = json!({
        "agent": {
            "id": agent.id,
            "name": agent.name,
            "description": shorten(&agent.description, MAX_DESCRIPTION),
            "tool_count": contract.tools.len(),
        },
        "runtime_ready": contract.runtime_ready,
        "tools": tools,
    });
    if include_unresolved {
        let unresolved: Vec<&str> = contract
            .diagnostics
            .iter()
            .filter(|d| d.code == "unresolved_tool")
            .filter_map(|d| d.location.as_deref())
            .collect();
        summary["unresolved_tools"] = json!(unresolved);
    }
    summary
}

/// A schema's fields as `path: type` lines (`(required)` marked), depth- and width-bounded.
pub fn fields(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut total = 0usize;
    walk(schema, "", 1, &mut out, &mut total);
    if total > MAX_FIELDS {
        out.truncate(MAX_FIELDS);
        out.push(format!("… {} more fields truncated", total - MAX_FIELDS));
    }
    out
}

fn walk(schema: &Value, prefix: &str, depth: usize, out: &mut Vec<String>, total: &mut usize) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, property) in properties {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let kind = type_of(property);
        let mark = if required.contains(&name.as_str()) {
            " (required)"
        } else {
            ""
        };
        let (nested, nested_path) = match property.get("items") {
            Some(items) if kind == "array" => (items, format!("{path}[]")),
            _ => (property, path.clone()),
        };
        let has_children = nested.get("properties").is_some();
        *total += 1;
        if has_children && depth >= MAX_DEPTH {
            out.push(format!(
                "{path}: {kind}{mark} (truncated: deeper fields omitted)"
            ));
            continue;
        }
        out.push(format!("{path}: {kind}{mark}"));
        walk(nested, &nested_path, depth + 1, out, total);
    }
}

fn type_of(schema: &Value) -> String {
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("|"),
        _ if schema.get("properties").is_some() => "object".into(),
        _ if schema.get("enum").is_some() => "enum".into(),
        _ => "any".into(),
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}… (truncated)")
}
