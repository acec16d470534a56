//! Resolution: the selected agent's tool references (by id or by name) against the tools
//! that exist. What cannot be resolved is a diagnostic, never a failure.

use crate::hints;
use crate::types::{
    AgentContract, AgentSummary, ContractDiagnostic, RuntimeAgent, RuntimeTool, ToolContract,
};

/// The contract of `agent` over the `available` tools.
pub fn resolve(agent: Option<&RuntimeAgent>, available: &[RuntimeTool]) -> AgentContract {
    let Some(agent) = agent else {
        return AgentContract::empty();
    };
    let mut diagnostics = Vec::new();
    let mut tools: Vec<ToolContract> = Vec::new();
    for reference in &agent.definition.tools {
        let found = available
            .iter()
            .find(|t| &t.id == reference)
            .or_else(|| available.iter().find(|t| &t.definition.name == reference));
        let Some(tool) = found else {
            diagnostics.push(ContractDiagnostic {
                code: "unresolved_tool".into(),
                message: format!("the agent names tool {reference:?}, which does not exist"),
                location: Some(reference.clone()),
            });
            continue;
        };
        if tools.iter().any(|t| t.id == tool.id) {
            continue;
        }
        let mut hint_diagnostics = Vec::new();
        let ui_hints = hints::collect(
            tool.definition.x_ui.as_ref(),
            &tool.definition.output_schema,
            &mut hint_diagnostics,
        );
        for mut d in hint_diagnostics {
            d.location = Some(format!(
                "{}:{}",
                tool.definition.name,
                d.location.unwrap_or_default()
            ));
            diagnostics.push(d);
        }
        tools.push(ToolContract {
            id: tool.id.clone(),
            name: tool.definition.name.clone(),
            description: tool.definition.description.clone(),
            input_schema: tool.definition.input_schema.clone(),
            output_schema: tool.definition.output_schema.clone(),
            ui_hints,
        });
    }
    let runtime_ready = !diagnostics.iter().any(|d| d.code == "unresolved_tool");
    AgentContract {
        agent: Some(AgentSummary {
            id: agent.id.clone(),
            name: agent.definition.name.clone(),
            description: agent.definition.description.clone(),
            instructions: agent.definition.instructions.clone(),
            tool_refs: agent.definition.tools.clone(),
        }),
        tools,
        runtime_ready,
        diagnostics,
    }
}
