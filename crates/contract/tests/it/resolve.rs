use draftsmith_contract::{AgentContract, resolve};
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::{agent, tool};

#[test]
fn no_selected_agent_is_a_well_formed_empty_contract() {
    let contract = resolve(None, &[]);
    assert_eq!(contract, AgentContract::empty());
    let json = serde_json::to_value(&contract).unwrap();
    assert_eq!(
        json,
        json!({"agent": null, "tools": [], "runtime_ready": false, "diagnostics": []})
    );
}

#[test]
fn references_resolve_by_id_or_name_and_missing_ones_are_diagnostics() {
    let tools = [
        tool("t-1", "revenue", json!({}), None),
        tool("t-2", "top_products", json!({}), None),
    ];
    let contract = resolve(
        Some(&agent(&["t-1", "top_products", "ghost", "revenue"])),
        &tools,
    );
    let names: Vec<&str> = contract.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["revenue", "top_products"],
        "resolved once each, in order"
    );
    assert!(!contract.runtime_ready);
    assert_eq!(contract.diagnostics.len(), 1);
    assert_eq!(contract.diagnostics[0].code, "unresolved_tool");
    assert_eq!(contract.diagnostics[0].location.as_deref(), Some("ghost"));
    let ready = resolve(Some(&agent(&["t-1"])), &tools);
    assert!(ready.runtime_ready);
    assert_eq!(ready.agent.unwrap().tool_refs, ["t-1"]);
}
