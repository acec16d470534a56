//! The app's selected-agent contract, loaded for a run's context and for the builder API.

use draftsmith_contract::{
    AgentContract, AgentDefinition, ContractDiagnostic, RuntimeAgent, RuntimeTool, ToolDefinition,
};
use draftsmith_core::api::{App, RunBudget};
use draftsmith_store::{Store, StoreError, StoredResource};

/// What a run is given besides its prompt: the contract under
/// `context.selected_agent_contract`, and its budget.
pub fn input_params(contract: &AgentContract, budget: &RunBudget) -> serde_json::Value {
    serde_json::json!({
        "context": { "selected_agent_contract": contract },
        "budget": budget,
    })
}

/// What a run seeds at [`draftsmith_tools::CONTRACT_FILE`] for `contract`, where both
/// engines' contract tools read it.
pub fn file_content(contract: &AgentContract) -> Vec<u8> {
    serde_json::to_value(contract)
        .unwrap_or_default()
        .to_string()
        .into_bytes()
}

/// The contract of `app`'s selected agent; a well-formed empty one when none is selected,
/// and a diagnostic when the selected agent no longer exists.
pub async fn load(store: &dyn Store, app: &App) -> Result<AgentContract, StoreError> {
    let Some(agent_id) = &app.selected_agent_id else {
        return Ok(AgentContract::empty());
    };
    let stored = match store.resource("agent", agent_id).await {
        Ok(stored) => stored,
        Err(StoreError::NotFound(_)) => {
            let mut contract = AgentContract::empty();
            contract.diagnostics.push(ContractDiagnostic {
                code: "unresolved_agent".into(),
                message: format!("the selected agent {agent_id:?} does not exist"),
                location: None,
            });
            return Ok(contract);
        }
        Err(err) => return Err(err),
    };
    let agent = as_agent(stored)?;
    let tools = store
        .resources(
            "tool",
            Some(&draftsmith_core::UserId(agent.owner_user_id.clone())),
        )
        .await?
        .into_iter()
        .map(as_tool)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(draftsmith_contract::resolve(Some(&agent), &tools))
}

/// A stored document as an agent.
pub fn as_agent(stored: StoredResource) -> Result<RuntimeAgent, StoreError> {
    let definition: AgentDefinition = serde_json::from_value(stored.body)
        .map_err(|e| StoreError::Corrupt(format!("agent {}: {e}", stored.id)))?;
    Ok(RuntimeAgent {
        id: stored.id,
        owner_user_id: stored.owner.0,
        definition,
    })
}

/// A stored document as a tool.
pub fn as_tool(stored: StoredResource) -> Result<RuntimeTool, StoreError> {
    let definition: ToolDefinition = serde_json::from_value(stored.body)
        .map_err(|e| StoreError::Corrupt(format!("tool {}: {e}", stored.id)))?;
    Ok(RuntimeTool {
        id: stored.id,
        owner_user_id: stored.owner.0,
        definition,
    })
}
