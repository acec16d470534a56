//! `CODING_AGENT_TOOL_SPECS`: the one registry of tools that feeds the model's tool list, the
//! capabilities the service advertises, and input validation.

use std::sync::LazyLock;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;

use crate::input::{
    ApplyPatchInput, DeleteInput, DescribeContractInput, GetContractInput, GlobInput, ListInput,
    ReadInput, RenameInput, RunCommandInput, SearchInput, WriteInput,
};

/// One tool as the model and the service see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// The tool's name, shown in events and the UI.
    pub name: &'static str,
    /// Stable identifier for capabilities and configuration.
    pub slug: &'static str,
    /// The function name the model calls.
    pub function_name: &'static str,
    /// When to use the tool and its limits, written for the model.
    pub description: &'static str,
    /// Strict JSON Schema of the arguments object.
    pub input_schema: Value,
}

/// Every tool of the native engine, in the order the model is shown them.
pub fn tool_specs() -> &'static [ToolSpec] {
    &SPECS
}

/// The spec called `function_name`, if there is one.
pub(crate) fn find(function_name: &str) -> Option<&'static ToolSpec> {
    SPECS.iter().find(|s| s.function_name == function_name)
}

static SPECS: LazyLock<Vec<ToolSpec>> = LazyLock::new(|| {
    vec![
        spec::<ListInput>(
            "list",
            "List files and directories under a directory of the workspace, as a tree up to `depth` levels deep (directories end with \"/\"). Respects .gitignore and hides .git, node_modules and build output. Use it to find your way around before reading files; at most a few hundred entries are returned.",
        ),
        spec::<ReadInput>(
            "read",
            "Read a text file of the workspace, optionally only lines `start_line` to `end_line` (1-based, inclusive). The answer gives `total_lines` and says `truncated` when the size bound cut it short; then read on from `next_start_line`. Read a file before patching it.",
        ),
        spec::<SearchInput>(
            "search",
            "Search file contents of the workspace with a regular expression, optionally only in files matching `glob`. Returns matching lines as \"path:line:text\", up to a bound (it says `truncated` when there were more). Respects .gitignore; skips binary files, .git, node_modules and build output.",
        ),
        spec::<GlobInput>(
            "glob",
            "Find files whose workspace-relative path matches a glob such as \"**/*.css\" or \"src/components/*.tsx\". Respects .gitignore; returns sorted paths up to a bound.",
        ),
        spec::<WriteInput>(
            "write",
            "Create a file or replace its whole content; parent directories are created. Prefer apply_patch for changing part of an existing file. Paths are relative to the workspace; .git, node_modules and build output cannot be written.",
        ),
        spec::<ApplyPatchInput>(
            "apply_patch",
            "Edit files with a patch: \"*** Begin Patch\", then per file \"*** Add File: path\" (lines starting with +), \"*** Delete File: path\", or \"*** Update File: path\" (optionally followed by \"*** Move to: new_path\") with hunks. A hunk starts with \"@@\" or \"@@ <a line just above the change, e.g. the enclosing function>\" and has lines starting with \" \" (unchanged context, about 3 lines before and after), \"-\" (removed) or \"+\" (added); \"*** End of File\" ends a hunk that must match the end of the file. Finish with \"*** End Patch\". Add File onto an existing file, or Move to onto an existing file, replaces it. All files change or none do. If a hunk's context appears more than once, add an @@ line or more context; a failure names the file and hunk and shows the nearest text.",
        ),
        spec::<DeleteInput>(
            "delete",
            "Delete a file, or a directory with everything in it. Paths are relative to the workspace; .git, node_modules and build output cannot be touched.",
        ),
        spec::<RenameInput>(
            "rename",
            "Move or rename a file or directory within the workspace. The destination must not exist; its parent directories are created.",
        ),
        spec::<RunCommandInput>(
            "run_command",
            "Run a shell command (sh -c) in the workspace root, e.g. to install dependencies, build or run tests. Returns the exit code and the combined stdout and stderr (only the tail when long). The command is killed, with every process it started, when it exceeds its time limit or the run is cancelled; background processes do not outlive it. No interactive input.",
        ),
        spec::<GetContractInput>(
            "coding_agent_get_agent_integration_contract",
            "Get the full integration contract of the runtime AI agent this app embeds: the agent, each of its tools with input and output JSON Schemas, normalised UI hints (`x-ui`: chart, table or stat) and diagnostics for anything unresolved. Use it when you build UI that calls the agent's tools or shows their results and need exact schemas.",
        ),
        spec::<DescribeContractInput>(
            "coding_agent_describe_selected_agent_contract",
            "Get a short summary of the runtime AI agent this app embeds: its name, whether it is ready to run, and per tool the input and output fields (as \"path: type\", deep or wide schemas cut and marked) and UI hint kinds. Cheaper than the full contract; set `include_unresolved` to also list tool references that do not resolve.",
        ),
    ]
});

fn spec<T: JsonSchema>(name: &'static str, description: &'static str) -> ToolSpec {
    ToolSpec {
        name,
        slug: name,
        function_name: name,
        description,
        input_schema: schema_for::<T>(),
    }
}

/// The derived schema, cleaned of generator metadata the model does not need.
fn schema_for<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| s.meta_schema = None)
        .into_generator();
    let mut value = generator.into_root_schema_for::<T>().to_value();
    if let Value::Object(root) = &mut value {
        root.remove("title");
        root.remove("description");
        if !root.contains_key("required") {
            root.insert("required".into(), Value::Array(Vec::new()));
        }
        // Tools without arguments still describe an (empty) object for the model.
        if !root.contains_key("properties") {
            root.insert("properties".into(), Value::Object(serde_json::Map::new()));
        }
    }
    simplify(&mut value);
    value
}

/// Drops `format` annotations such as "uint32" that model APIs do not understand, and the
/// `"null"` type and default that optional fields get: an optional field is simply left out.
fn simplify(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("format");
            if map.get("default").is_some_and(Value::is_null) {
                map.remove("default");
            }
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let single = types.remove(0);
                    map.insert("type".into(), single);
                }
            }
            map.values_mut().for_each(simplify);
        }
        Value::Array(items) => items.iter_mut().for_each(simplify),
        _ => {}
    }
}
