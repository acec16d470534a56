//! The registry: names, strict schemas, and that every spec is served by `run_tool`.

use draftsmith_tools::tool_specs;

#[test]
fn every_spec_is_strict_and_named_consistently() {
    let names: Vec<&str> = tool_specs().iter().map(|s| s.function_name).collect();
    assert_eq!(
        names,
        [
            "list",
            "read",
            "search",
            "glob",
            "write",
            "apply_patch",
            "delete",
            "rename",
            "run_command",
            "coding_agent_get_agent_integration_contract",
            "coding_agent_describe_selected_agent_contract"
        ]
    );
    for spec in tool_specs() {
        assert_eq!(spec.name, spec.function_name);
        assert_eq!(spec.slug, spec.function_name);
        assert!(spec.description.len() > 60, "{}", spec.name);
        let schema = &spec.input_schema;
        assert_eq!(schema["type"], "object", "{}", spec.name);
        assert_eq!(schema["additionalProperties"], false, "{}", spec.name);
        assert!(schema["required"].is_array(), "{}", spec.name);
        assert!(schema.get("$schema").is_none() && schema.get("title").is_none());
        for (field, rule) in schema["properties"].as_object().unwrap() {
            assert!(rule["type"].is_string(), "{}.{field}: {rule}", spec.name);
            assert!(rule["description"].is_string(), "{}.{field}", spec.name);
            assert!(rule.get("format").is_none(), "{}.{field}", spec.name);
            assert!(rule.get("default").is_none(), "{}.{field}", spec.name);
        }
    }
}

#[test]
fn schemas_look_as_documented() {
    let read = tool_specs().iter().find(|s| s.name == "read").unwrap();
    assert_eq!(read.input_schema["required"], serde_json::json!(["path"]));
    assert_eq!(read.input_schema["properties"]["path"]["minLength"], 1);
    assert_eq!(
        read.input_schema["properties"]["start_line"]["type"],
        "integer"
    );
    assert_eq!(read.input_schema["properties"]["start_line"]["minimum"], 1);
    let rename = tool_specs().iter().find(|s| s.name == "rename").unwrap();
    assert_eq!(
        rename.input_schema["required"],
        serde_json::json!(["from_path", "to_path"])
    );
    let list = tool_specs().iter().find(|s| s.name == "list").unwrap();
    assert_eq!(list.input_schema["required"], serde_json::json!([]));
    assert_eq!(list.input_schema["properties"]["depth"]["maximum"], 10);
}
