//! Turns the model's raw argument text into a tool's input struct, or into an
//! `CODING_AGENT_TOOL_INPUT_INVALID` that names the field at fault; nothing runs before this.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ToolError;

/// Parses `arguments` against `schema` (bounds) and `T` (fields and types).
pub(crate) fn parse_input<T: DeserializeOwned>(
    schema: &Value,
    arguments: &str,
) -> Result<T, ToolError> {
    // Some providers send "" for a call without arguments.
    let text = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ToolError::input(
            None,
            format!("arguments are not valid JSON ({e}); send one JSON object"),
        )
    })?;
    let Value::Object(fields) = &value else {
        return Err(ToolError::input(None, "arguments must be a JSON object"));
    };
    check_bounds(schema, fields)?;
    serde_path_to_error::deserialize(&value).map_err(|e| {
        let message = e.inner().to_string();
        let path = e.path().to_string();
        let field = if path == "." {
            backticked(&message)
        } else {
            Some(path)
        };
        ToolError::input(field.as_deref(), format!("invalid arguments: {message}"))
    })
}

/// Applies the schema's `minLength`, `minimum` and `maximum` to the top-level fields.
fn check_bounds(schema: &Value, fields: &serde_json::Map<String, Value>) -> Result<(), ToolError> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    for (name, value) in fields {
        let Some(rule) = properties.get(name) else {
            continue;
        };
        if let (Some(text), Some(min)) = (
            value.as_str(),
            rule.get("minLength").and_then(Value::as_u64),
        ) && (text.chars().count() as u64) < min
        {
            let what = if text.is_empty() {
                "empty"
            } else {
                "too short"
            };
            return Err(ToolError::input(
                Some(name),
                format!("`{name}` must not be {what}"),
            ));
        }
        if let Some(n) = value.as_f64() {
            if let Some(min) = rule.get("minimum").and_then(Value::as_f64)
                && n < min
            {
                return Err(ToolError::input(
                    Some(name),
                    format!("`{name}` must be at least {min}"),
                ));
            }
            if let Some(max) = rule.get("maximum").and_then(Value::as_f64)
                && n > max
            {
                return Err(ToolError::input(
                    Some(name),
                    format!("`{name}` must be at most {max}"),
                ));
            }
        }
    }
    Ok(())
}

/// The first `name` quoted in a serde message such as "missing field `path`".
fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}
