//! UI hint normalisation: `x-ui` or `x_ui`, on a tool or on any schema property, becomes one
//! [`UiHint`] shape. Unknown kinds and malformed hints become diagnostics, never guesses.

use serde_json::{Map, Value};

use crate::types::{ContractDiagnostic, Field, LocatedHint, UiHint};

/// Chart types a hint may name.
pub const CHART_TYPES: &[&str] = &["line", "bar", "area", "pie"];

/// The hint stored under either spelling of the key.
pub fn raw_hint(object: &Map<String, Value>) -> Option<&Value> {
    object.get("x-ui").or_else(|| object.get("x_ui"))
}

/// Every hint of a tool: on the tool itself and on properties of its output schema (at any
/// depth), each normalised or reported.
pub fn collect(
    tool_hint: Option<&Value>,
    output_schema: &Value,
    diagnostics: &mut Vec<ContractDiagnostic>,
) -> Vec<LocatedHint> {
    let mut found = Vec::new();
    if let Some(raw) = tool_hint {
        push(raw, "tool".into(), output_schema, &mut found, diagnostics);
    }
    walk(
        output_schema,
        "output_schema",
        output_schema,
        &mut found,
        diagnostics,
    );
    found
}

fn walk(
    schema: &Value,
    location: &str,
    root: &Value,
    found: &mut Vec<LocatedHint>,
    diagnostics: &mut Vec<ContractDiagnostic>,
) {
    let Some(object) = schema.as_object() else {
        return;
    };
    if let Some(raw) = raw_hint(object) {
        push(raw, location.to_owned(), root, found, diagnostics);
    }
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            walk(
                property,
                &format!("{location}.properties.{name}"),
                root,
                found,
                diagnostics,
            );
        }
    }
    if let Some(items) = object.get("items") {
        walk(
            items,
            &format!("{location}.items"),
            root,
            found,
            diagnostics,
        );
    }
}

fn push(
    raw: &Value,
    location: String,
    root: &Value,
    found: &mut Vec<LocatedHint>,
    diagnostics: &mut Vec<ContractDiagnostic>,
) {
    match normalise(raw) {
        Ok(hint) => {
            for field in referenced(&hint) {
                if !mentions(root, field) {
                    diagnostics.push(diagnostic(
                        "ui_hint_unknown_field",
                        format!("the hint names field {field:?}, which the output schema does not define"),
                        &location,
                    ));
                }
            }
            found.push(LocatedHint { location, hint });
        }
        Err((code, message)) => diagnostics.push(diagnostic(code, message, &location)),
    }
}

fn diagnostic(code: &str, message: String, location: &str) -> ContractDiagnostic {
    ContractDiagnostic {
        code: code.into(),
        message,
        location: Some(location.into()),
    }
}

/// One raw hint to its normalised form, or the diagnostic code and message.
pub fn normalise(raw: &Value) -> Result<UiHint, (&'static str, String)> {
    let malformed = |m: &str| ("ui_hint_malformed", m.to_owned());
    let object = raw
        .as_object()
        .ok_or_else(|| malformed("a UI hint must be an object"))?;
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("a UI hint needs a string `kind`"))?;
    let text = |key: &str| -> Result<Option<String>, (&'static str, String)> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(("ui_hint_malformed", format!("`{key}` must be a string"))),
        }
    };
    match kind {
        "chart" => {
            let chart_type = text("chart_type")?.unwrap_or_else(|| "line".into());
            if !CHART_TYPES.contains(&chart_type.as_str()) {
                return Err(malformed(&format!(
                    "unknown chart_type {chart_type:?}; known: {}",
                    CHART_TYPES.join(", ")
                )));
            }
            let series = match object.get("series").or_else(|| object.get("y")) {
                Some(Value::String(field)) => vec![Field {
                    field: field.clone(),
                    label: None,
                }],
                Some(value) => fields(value, "series")?,
                None => Vec::new(),
            };
            if series.is_empty() {
                return Err(malformed(
                    "a chart needs at least one series (`series` or `y`)",
                ));
            }
            Ok(UiHint::Chart {
                chart_type,
                x: text("x")?,
                series,
                title: text("title")?,
            })
        }
        "table" => {
            let columns = fields(object.get("columns").unwrap_or(&Value::Null), "columns")?;
            if columns.is_empty() {
                return Err(malformed("a table needs at least one column"));
            }
            Ok(UiHint::Table { columns })
        }
        "stat" => {
            let value =
                text("value")?.ok_or_else(|| malformed("a stat needs a `value` field name"))?;
            Ok(UiHint::Stat {
                value,
                unit: text("unit")?,
                label: text("label")?,
            })
        }
        other => Err((
            "ui_hint_unknown_kind",
            format!("unknown UI hint kind {other:?}; known: chart, table, stat"),
        )),
    }
}

/// A list of fields: strings, or objects `{field, label?}`.
fn fields(value: &Value, key: &str) -> Result<Vec<Field>, (&'static str, String)> {
    let bad = || {
        (
            "ui_hint_malformed",
            format!("`{key}` must be a list of field names or {{field, label}} objects"),
        )
    };
    let items = value.as_array().ok_or_else(bad)?;
    items
        .iter()
        .map(|item| match item {
            Value::String(field) => Ok(Field {
                field: field.clone(),
                label: None,
            }),
            Value::Object(o) => {
                let field = o.get("field").and_then(Value::as_str).ok_or_else(bad)?;
                let label = o.get("label").and_then(Value::as_str).map(str::to_owned);
                Ok(Field {
                    field: field.into(),
                    label,
                })
            }
            _ => Err(bad()),
        })
        .collect()
}

fn referenced(hint: &UiHint) -> Vec<&str> {
    match hint {
        UiHint::Chart { x, series, .. } => x
            .iter()
            .map(String::as_str)
            .chain(series.iter().map(|f| f.field.as_str()))
            .collect(),
        UiHint::Table { columns } => columns.iter().map(|f| f.field.as_str()).collect(),
        UiHint::Stat { value, .. } => vec![value.as_str()],
    }
}

/// Whether `field` names a property anywhere in `schema` (schemas without properties say
/// nothing, so they mention everything).
fn mentions(schema: &Value, field: &str) -> bool {
    fn any_properties(schema: &Value) -> bool {
        schema.get("properties").is_some() || schema.get("items").is_some_and(any_properties)
    }
    fn find(schema: &Value, field: &str) -> bool {
        let in_properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| p.contains_key(field) || p.values().any(|v| find(v, field)));
        in_properties || schema.get("items").is_some_and(|i| find(i, field))
    }
    !any_properties(schema) || find(schema, field)
}
