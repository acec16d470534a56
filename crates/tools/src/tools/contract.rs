//! The two contract tools. The service writes the app's selected-agent contract into the
//! workspace at every run start ([`CONTRACT_FILE`], the same file OpenCode's seeded tools
//! read), and these tools answer from it, so both engines see the same data.

use draftsmith_contract::AgentContract;
use serde_json::json;

use crate::context::ToolContext;
use crate::error::ToolError;
use crate::input::{DescribeContractInput, GetContractInput};
use crate::tools::Done;

/// Where the run's contract lives, relative to the workspace.
pub const CONTRACT_FILE: &str = ".cache/opencode/selected_agent_contract.json";

fn load(ctx: &ToolContext) -> Result<AgentContract, ToolError> {
    // The agent can plant links under `.cache/`: none on the way is followed.
    let read = crate::beneath::open_in(
        &ctx.workspace,
        &ctx.workspace.join(CONTRACT_FILE),
        rustix::fs::OFlags::RDONLY,
    )
    .and_then(|mut file| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).map(|_| text)
    });
    let text = match read {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AgentContract::empty()),
        Err(e) => {
            return Err(ToolError::failed(format!(
                "cannot read the agent contract: {e}"
            )));
        }
    };
    serde_json::from_str(&text)
        .map_err(|e| ToolError::failed(format!("the agent contract is unreadable: {e}")))
}

/// The latest full contract.
pub(crate) fn get(ctx: &ToolContext, _: GetContractInput) -> Result<Done, ToolError> {
    let contract = load(ctx)?;
    Ok(Done {
        result: json!({ "contract": contract }),
        paths: Vec::new(),
    })
}

/// A bounded summary of the contract.
pub(crate) fn describe(ctx: &ToolContext, input: DescribeContractInput) -> Result<Done, ToolError> {
    let contract = load(ctx)?;
    let summary =
        draftsmith_contract::describe(&contract, input.include_unresolved.unwrap_or(false));
    Ok(Done {
        result: json!({ "summary": summary }),
        paths: Vec::new(),
    })
}
