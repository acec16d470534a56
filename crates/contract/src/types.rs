//! Wire types of runtime agents, their tools, and the resolved contract.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A tool a runtime agent can call, as written by its author.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolDefinition {
    /// Unique name among the owner's tools: 1-100 characters, not all blank, no control
    /// characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// JSON Schema of its input.
    #[schema(value_type = Object)]
    pub input_schema: Value,
    /// JSON Schema of its output.
    #[schema(value_type = Object)]
    pub output_schema: Value,
    /// How a UI should show its output (`x-ui`, also accepted as `x_ui`).
    #[serde(
        rename = "x-ui",
        alias = "x_ui",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Object>)]
    pub x_ui: Option<Value>,
}

/// A stored tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuntimeTool {
    /// Its id.
    pub id: String,
    /// Who owns it.
    pub owner_user_id: String,
    /// The definition.
    #[serde(flatten)]
    pub definition: ToolDefinition,
}

/// A runtime agent as written by its author.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentDefinition {
    /// Its name: 1-100 characters, not all blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Its system instructions.
    #[serde(default)]
    pub instructions: String,
    /// The tools it uses, by id or by name.
    #[serde(default)]
    pub tools: Vec<String>,
}

/// A stored agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuntimeAgent {
    /// Its id.
    pub id: String,
    /// Who owns it.
    pub owner_user_id: String,
    /// The definition.
    #[serde(flatten)]
    pub definition: AgentDefinition,
}

/// A normalised UI hint: one shape for every spelling and location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UiHint {
    /// A chart of one or more series.
    Chart {
        /// `line`, `bar`, `area` or `pie`.
        chart_type: String,
        /// Field on the x axis.
        x: Option<String>,
        /// Plotted fields.
        series: Vec<Field>,
        /// Optional title.
        title: Option<String>,
    },
    /// A table of columns.
    Table {
        /// Columns in order.
        columns: Vec<Field>,
    },
    /// A single figure.
    Stat {
        /// Field holding the value.
        value: String,
        /// Unit shown beside it.
        unit: Option<String>,
        /// Label shown above it.
        label: Option<String>,
    },
}

/// A field a hint refers to, with an optional label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Field {
    /// Field name in the output.
    pub field: String,
    /// Label to show.
    pub label: Option<String>,
}

/// A hint and where it was found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LocatedHint {
    /// `tool` or a schema path such as `output_schema.properties.revenue`.
    pub location: String,
    /// The normalised hint.
    #[serde(rename = "x-ui")]
    pub hint: UiHint,
}

/// Something that could not be resolved or understood; never a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContractDiagnostic {
    /// Stable code: `unresolved_tool`, `ui_hint_unknown_kind`, `ui_hint_malformed`, …
    pub code: String,
    /// What is wrong.
    pub message: String,
    /// Where (tool name, hint location), when it applies.
    pub location: Option<String>,
}

/// A resolved tool of the selected agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ToolContract {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of its input.
    #[schema(value_type = Object)]
    pub input_schema: Value,
    /// JSON Schema of its output.
    #[schema(value_type = Object)]
    pub output_schema: Value,
    /// Its UI hints, normalised.
    pub ui_hints: Vec<LocatedHint>,
}

/// The agent's headline facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentSummary {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Its instructions.
    pub instructions: String,
    /// Tool references it names.
    pub tool_refs: Vec<String>,
}

/// `GET /admin/apps/{app_id}/builder/agent-contract`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentContract {
    /// The selected agent; `None` when the app has none.
    pub agent: Option<AgentSummary>,
    /// Its resolved tools.
    pub tools: Vec<ToolContract>,
    /// Whether the agent can run as written: selected, every tool resolved.
    pub runtime_ready: bool,
    /// Unresolved references and hints that could not be understood.
    pub diagnostics: Vec<ContractDiagnostic>,
}

impl AgentContract {
    /// The well-formed contract of an app with no selected agent.
    pub fn empty() -> Self {
        Self {
            agent: None,
            tools: Vec::new(),
            runtime_ready: false,
            diagnostics: Vec::new(),
        }
    }
}
