//! Contract resolution, hint normalisation and bounded summaries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hints;
mod resolve;
mod summary;

use draftsmith_contract::{AgentDefinition, RuntimeAgent, RuntimeTool, ToolDefinition};
use serde_json::{Value, json};

pub fn tool(id: &str, name: &str, output_schema: Value, x_ui: Option<Value>) -> RuntimeTool {
    RuntimeTool {
        id: id.into(),
        owner_user_id: "alice".into(),
        definition: ToolDefinition {
            name: name.into(),
            description: format!("{name} does things"),
            input_schema: json!({"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}),
            output_schema,
            x_ui,
        },
    }
}

pub fn agent(refs: &[&str]) -> RuntimeAgent {
    RuntimeAgent {
        id: "agent-1".into(),
        owner_user_id: "alice".into(),
        definition: AgentDefinition {
            name: "Sales analyst".into(),
            description: "Answers questions about sales".into(),
            instructions: "Be brief.".into(),
            tools: refs.iter().map(|r| (*r).to_owned()).collect(),
        },
    }
}
