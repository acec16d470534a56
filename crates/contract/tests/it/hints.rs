use draftsmith_contract::hints::normalise;
use draftsmith_contract::{Field, ToolDefinition, UiHint, resolve};
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::{agent, tool};

fn field(name: &str) -> Field {
    Field {
        field: name.into(),
        label: None,
    }
}

#[test]
fn both_spellings_are_accepted_on_tools_and_properties() {
    let dashed: ToolDefinition = serde_json::from_value(json!({
        "name": "a", "input_schema": {}, "output_schema": {}, "x-ui": {"kind": "stat", "value": "total"}
    }))
    .unwrap();
    let underscored: ToolDefinition = serde_json::from_value(json!({
        "name": "a", "input_schema": {}, "output_schema": {}, "x_ui": {"kind": "stat", "value": "total"}
    }))
    .unwrap();
    assert_eq!(dashed, underscored);
    let schema = json!({"type": "object", "properties": {
        "total": {"type": "number", "x_ui": {"kind": "stat", "value": "total", "unit": "EUR"}},
        "rows": {"type": "array", "x-ui": {"kind": "table", "columns": ["total"]}, "items": {"type": "object"}}
    }});
    let contract = resolve(
        Some(&agent(&["t"])),
        &[tool(
            "t",
            "sales",
            schema,
            Some(json!({"kind": "stat", "value": "total"})),
        )],
    );
    let located: Vec<(&str, &UiHint)> = contract.tools[0]
        .ui_hints
        .iter()
        .map(|h| (h.location.as_str(), &h.hint))
        .collect();
    assert_eq!(
        located,
        [
            (
                "tool",
                &UiHint::Stat {
                    value: "total".into(),
                    unit: None,
                    label: None
                }
            ),
            (
                "output_schema.properties.rows",
                &UiHint::Table {
                    columns: vec![field("total")]
                }
            ),
            (
                "output_schema.properties.total",
                &UiHint::Stat {
                    value: "total".into(),
                    unit: Some("EUR".into()),
                    label: None
                }
            ),
        ]
    );
    assert!(
        contract.diagnostics.is_empty(),
        "{:?}",
        contract.diagnostics
    );
    let wire = serde_json::to_value(&contract.tools[0].ui_hints[0]).unwrap();
    assert_eq!(
        wire,
        json!({"location": "tool", "x-ui": {"kind": "stat", "value": "total", "unit": null, "label": null}})
    );
}

#[test]
fn each_kind_normalises_with_its_fields() {
    assert_eq!(
        normalise(
            &json!({"kind": "chart", "chart_type": "bar", "x": "month", "series": ["revenue", {"field": "cost", "label": "Cost"}], "title": "Money"})
        ),
        Ok(UiHint::Chart {
            chart_type: "bar".into(),
            x: Some("month".into()),
            series: vec![
                field("revenue"),
                Field {
                    field: "cost".into(),
                    label: Some("Cost".into())
                }
            ],
            title: Some("Money".into()),
        })
    );
    assert_eq!(
        normalise(&json!({"kind": "chart", "x": "day", "y": "visits"})),
        Ok(UiHint::Chart {
            chart_type: "line".into(),
            x: Some("day".into()),
            series: vec![field("visits")],
            title: None
        })
    );
    assert_eq!(
        normalise(
            &json!({"kind": "table", "columns": [{"field": "name", "label": "Name"}, "qty"]})
        ),
        Ok(UiHint::Table {
            columns: vec![
                Field {
                    field: "name".into(),
                    label: Some("Name".into())
                },
                field("qty")
            ]
        })
    );
    assert_eq!(
        normalise(&json!({"kind": "stat", "value": "total", "unit": "%", "label": "Margin"})),
        Ok(UiHint::Stat {
            value: "total".into(),
            unit: Some("%".into()),
            label: Some("Margin".into())
        })
    );
}

#[test]
fn unknown_kinds_and_malformed_hints_are_reported_not_guessed() {
    let cases = [
        (json!({"kind": "map", "lat": "a"}), "ui_hint_unknown_kind"),
        (json!("chart"), "ui_hint_malformed"),
        (json!({"type": "chart"}), "ui_hint_malformed"),
        (json!({"kind": "chart", "x": "a"}), "ui_hint_malformed"),
        (
            json!({"kind": "chart", "chart_type": "radar", "series": ["a"]}),
            "ui_hint_malformed",
        ),
        (json!({"kind": "table", "columns": []}), "ui_hint_malformed"),
        (
            json!({"kind": "table", "columns": [5]}),
            "ui_hint_malformed",
        ),
        (json!({"kind": "stat"}), "ui_hint_malformed"),
        (json!({"kind": "stat", "value": 3}), "ui_hint_malformed"),
    ];
    for (raw, code) in cases {
        assert_eq!(normalise(&raw).map_err(|e| e.0), Err(code), "{raw}");
    }
    let schema = json!({"properties": {"n": {"type": "number", "x-ui": {"kind": "gauge"}}}});
    let contract = resolve(
        Some(&agent(&["t"])),
        &[tool(
            "t",
            "odd",
            schema,
            Some(json!({"kind": "stat", "value": "missing"})),
        )],
    );
    let codes: Vec<(&str, Option<&str>)> = contract
        .diagnostics
        .iter()
        .map(|d| (d.code.as_str(), d.location.as_deref()))
        .collect();
    assert_eq!(
        codes,
        [
            ("ui_hint_unknown_field", Some("odd:tool")),
            (
                "ui_hint_unknown_kind",
                Some("odd:output_schema.properties.n")
            )
        ]
    );
    assert_eq!(
        contract.tools[0].ui_hints.len(),
        1,
        "the good hint is kept, the bad one is not guessed"
    );
    assert!(
        contract.runtime_ready,
        "hint trouble does not make the agent unrunnable"
    );
}
