//! What the handler annotations cannot say, added from the same code that decides it:
//! the error statuses the shared extractors send (`Caller` → 401, strict `Json` → 400,
//! 408, 413, 415, path ids → 400 and 404, `Query` → 400, any handler → 500), the template
//! ids from the template registry, a tool's schemas as JSON Schema documents, and
//! `#[serde(flatten)]` structs written out as the one object they serialise to.

use serde_json::{Map, Value, json};

/// Applies every rule to the serialised document.
pub fn complete(doc: &mut Value) {
    flatten_all_of(doc);
    bytes_bodies(doc);
    template_enum(doc);
    tool_schemas(doc);
    publication(doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            if matches!(method.as_str(), "get" | "put" | "post" | "delete" | "patch") {
                no_null_parameters(op);
                extractor_errors(op);
            }
        }
    }
}

/// A parameter is text on the wire and is never `null`: an optional one is left out.
fn no_null_parameters(op: &mut Value) {
    let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
        return;
    };
    for param in params {
        if let Some(types) = param
            .pointer_mut("/schema/type")
            .and_then(Value::as_array_mut)
        {
            types.retain(|t| t != "null");
            if types.len() == 1 {
                let only = types[0].clone();
                param["schema"]["type"] = only;
            }
        }
    }
}

fn extractor_errors(op: &mut Value) {
    let secured = match op.get("security").and_then(Value::as_array) {
        None => true,
        Some(reqs) => reqs
            .iter()
            .any(|r| r.as_object().is_some_and(|o| !o.is_empty())),
    };
    let params = op.get("parameters").and_then(Value::as_array);
    let has = |place: &str| params.is_some_and(|ps| ps.iter().any(|p| p["in"] == place));
    let (path, query) = (has("path"), has("query"));
    let body = op.get("requestBody").is_some();
    let json_body = op
        .pointer("/requestBody/content/application~1json")
        .is_some();
    let mut statuses: Vec<(&str, &str)> = vec![("500", "an unexpected failure (logged)")];
    if secured {
        statuses.push(("401", "missing or unknown credentials"));
    }
    if path || query || body {
        statuses.push(("400", "a malformed parameter or body"));
    }
    if path {
        statuses.push(("404", "no such resource visible to the caller"));
    }
    if body {
        statuses.push(("408", "the body did not arrive in time"));
        statuses.push(("413", "the body is too large"));
    }
    if json_body {
        statuses.push(("415", "the body is not `Content-Type: application/json`"));
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    for (status, description) in statuses {
        responses
            .entry(status)
            .or_insert_with(|| error_response(description));
    }
    for (status, response) in responses.iter_mut() {
        if status.starts_with('4') || status.starts_with('5') {
            fill_error_description(response);
        }
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn fill_error_description(response: &mut Value) {
    if response["description"].as_str().is_some_and(str::is_empty) {
        response["description"] = json!("the error envelope");
    }
}

/// `allOf: [{$ref: closed}, {own fields}]` (serde's flatten of a `deny_unknown_fields`
/// struct) can never match a real answer; written out as one closed object instead.
fn flatten_all_of(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    for (name, schema) in &schemas {
        let Some(parts) = schema.get("allOf").and_then(Value::as_array) else {
            continue;
        };
        let mut merged = Map::new();
        let mut properties = Map::new();
        let mut required: Vec<Value> = Vec::new();
        let mut closed = false;
        for part in parts {
            let part = match part.get("$ref").and_then(Value::as_str) {
                Some(r) => match schemas.get(r.trim_start_matches("#/components/schemas/")) {
                    Some(target) => target,
                    None => continue,
                },
                None => part,
            };
            if let Some(p) = part.get("properties").and_then(Value::as_object) {
                properties.extend(p.clone());
            }
            if let Some(r) = part.get("required").and_then(Value::as_array) {
                required.extend(r.iter().cloned());
            }
            closed |= part.get("additionalProperties") == Some(&Value::Bool(false));
        }
        if !closed {
            continue;
        }
        merged.insert("type".into(), json!("object"));
        merged.insert("description".into(), schema["description"].clone());
        merged.insert("required".into(), Value::Array(required));
        merged.insert("properties".into(), Value::Object(properties));
        merged.insert("additionalProperties".into(), json!(false));
        doc["components"]["schemas"][name] = Value::Object(merged);
    }
}

/// utoipa writes a `Vec<u8>` body as an array of integers; on the wire it is the bytes
/// themselves: a binary string for a request, no schema at all for an answer of any type.
fn bytes_bodies(value: &mut Value) {
    let Some(object) = value.as_object_mut() else {
        if let Some(items) = value.as_array_mut() {
            items.iter_mut().for_each(bytes_bodies);
        }
        return;
    };
    let is_bytes = |schema: &Value| {
        schema["type"] == "array"
            && schema["items"]["type"] == "integer"
            && schema["items"]["minimum"] == 0
    };
    if let Some(content) = object.get_mut("content").and_then(Value::as_object_mut) {
        for media in content.values_mut() {
            if media.get("schema").is_some_and(is_bytes) {
                media["schema"] = json!({"type": "string", "format": "binary"});
            }
        }
    }
    if let Some(responses) = object.get_mut("responses").and_then(Value::as_object_mut) {
        for response in responses.values_mut() {
            let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else {
                continue;
            };
            for media in content.values_mut() {
                if media["schema"]["format"] == "binary"
                    || media.get("schema").is_some_and(is_bytes)
                {
                    media.as_object_mut().map(|m| m.remove("schema"));
                }
            }
        }
    }
    object.values_mut().for_each(bytes_bodies);
}

/// `SetPublication`: a public app takes no access key, a private one needs one of 16-128
/// characters of `[A-Za-z0-9_-]` (checked in `routes::releases::set_publication`).
fn publication(doc: &mut Value) {
    let Some(schema) = doc.pointer_mut("/components/schemas/SetPublication") else {
        return;
    };
    let description = schema["description"].clone();
    *schema = json!({
        "description": description,
        "oneOf": [
            {"type": "object", "required": ["visibility"], "additionalProperties": false,
             "properties": {"visibility": {"const": "public"}, "access_key": {"type": "null"}}},
            {"type": "object", "required": ["visibility", "access_key"], "additionalProperties": false,
             "properties": {"visibility": {"const": "private"},
                            "access_key": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,128}$"}}}
        ]
    });
}

/// `CreateApp.template` is one of the registered templates.
fn template_enum(doc: &mut Value) {
    let ids: Vec<&str> = draftsmith_templates::all().iter().map(|t| t.id).collect();
    if let Some(template) = doc.pointer_mut("/components/schemas/CreateApp/properties/template") {
        template["enum"] = json!(ids);
    }
}

/// A tool's `input_schema` and `output_schema` must be JSON Schema objects that the
/// meta-schema accepts; documented as the subset of JSON Schema a generator can fill in
/// without breaking it (the server takes any valid schema object).
fn tool_schemas(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    schemas.insert(
        "JsonSchema".into(),
        json!({
            "type": "object",
            "description": "A JSON Schema (any valid one is accepted; these keywords are documented).",
            "properties": {
                "type": {"enum": ["object", "array", "string", "number", "integer", "boolean", "null"]},
                "description": {"type": "string"},
                "properties": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/JsonSchema"}},
                "items": {"$ref": "#/components/schemas/JsonSchema"},
                "required": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
                "additionalProperties": {"type": "boolean"}
            },
            "additionalProperties": false
        }),
    );
    // Answers echo what was stored, which may use any valid schema: they stay `object`.
    for def in ["ToolDefinition"] {
        for field in ["input_schema", "output_schema"] {
            if let Some(slot) = schemas
                .get_mut(def)
                .and_then(|s| s.get_mut("properties"))
                .and_then(|p| p.get_mut(field))
            {
                let description = slot["description"].clone();
                *slot = json!({"allOf": [{"$ref": "#/components/schemas/JsonSchema"}], "description": description});
            }
        }
    }
}

/// The document as of now: `CreateRun.model_id` and `engine` list exactly what a run may
/// ask for under the current registry and engine policy (both change with a reload).
pub fn live(base: &Value, state: &crate::AppState) -> Value {
    let mut doc = base.clone();
    let mut models: Vec<Value> = vec![json!("auto")];
    models.extend(
        state
            .runner
            .registry()
            .list()
            .models
            .into_iter()
            .filter(|m| m.available)
            .map(|m| json!(m.id)),
    );
    models.push(Value::Null);
    let policy = state.runner.policy();
    let mut engines: Vec<Value> = [
        draftsmith_core::EngineKind::Opencode,
        draftsmith_core::EngineKind::Native,
    ]
    .into_iter()
    .filter(|e| policy.choose(Some(*e)).is_ok())
    .map(|e| json!(e.as_str()))
    .collect();
    engines.push(Value::Null);
    if let Some(run) = doc.pointer_mut("/components/schemas/CreateRun/properties") {
        run["model_id"] = json!({"enum": models,
            "description": "A model of the registry that is available now, or `auto`; the policy's default when omitted."});
        run["engine"] = json!({"enum": engines,
            "description": "An engine the policy allows; the policy's default when omitted."});
    }
    doc
}
