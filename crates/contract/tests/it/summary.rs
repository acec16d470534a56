use draftsmith_contract::summary::{MAX_FIELDS, fields};
use draftsmith_contract::{describe, resolve};
use pretty_assertions::assert_eq;
use serde_json::{Map, Value, json};

use crate::{agent, tool};

#[test]
fn deep_schemas_are_cut_at_three_levels_and_marked() {
    let deep = json!({"type": "object", "required": ["a"], "properties": {
        "a": {"type": "object", "properties": {
            "b": {"type": "object", "properties": {
                "c": {"type": "object", "properties": {"d": {"type": "string"}}},
                "leaf": {"type": "integer"}
            }}
        }},
        "list": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}}}}
    }});
    assert_eq!(
        fields(&deep),
        [
            "a: object (required)",
            "a.b: object",
            "a.b.c: object (truncated: deeper fields omitted)",
            "a.b.leaf: integer",
            "list: array",
            "list[].id: string",
        ]
    );
}

#[test]
fn wide_schemas_are_cut_at_twenty_fields_and_marked() {
    let properties: Map<String, Value> = (0..45)
        .map(|i| (format!("f{i:02}"), json!({"type": "number"})))
        .collect();
    let wide = json!({"type": "object", "properties": properties});
    let listed = fields(&wide);
    assert_eq!(listed.len(), MAX_FIELDS + 1);
    assert_eq!(listed[0], "f00: number");
    assert_eq!(listed[MAX_FIELDS - 1], "f19: number");
    assert_eq!(listed[MAX_FIELDS], "… 25 more fields truncated");
}

#[test]
fn the_summary_has_metadata_readiness_fields_and_asked_for_unresolved_refs() {
    let output = json!({"type": "object", "properties": {"total": {"type": "number", "x-ui": {"kind": "stat", "value": "total"}}}});
    let contract = resolve(
        Some(&agent(&["t", "ghost"])),
        &[tool("t", "revenue", output, None)],
    );
    let expected = json!({
        "agent": {"id": "agent-1", "name": "Sales analyst", "description": "Answers questions about sales", "tool_count": 1},
        "runtime_ready": false,
        "tools": [{
            "name": "revenue",
            "description": "revenue does things",
            "input_fields": ["q: string (required)"],
            "output_fields": ["total: number"],
            "ui_hints": [{"location": "output_schema.properties.total", "kind": "stat"}]
        }]
    });
    assert_eq!(describe(&contract, false), expected);
    let mut with_unresolved = expected.clone();
    with_unresolved["unresolved_tools"] = json!(["ghost"]);
    assert_eq!(describe(&contract, true), with_unresolved);
    assert_eq!(describe(&resolve(None, &[]), true)["agent"], Value::Null);
}
