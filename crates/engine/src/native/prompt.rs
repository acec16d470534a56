//! What the native loop tells the model besides the conversation (the system prompt, the
//! app's agent contract, earlier turns), and how tool inputs are shown in events.

use serde_json::Value;

use crate::history::HistoryTurn;
use crate::model::{Message, Part};

/// Longest string kept in a tool event's input or output.
const EVENT_STRING_CHARS: usize = 4_000;

/// The paths a tool input names, under any of the keys tools and UIs use, and the file
/// headers of a patch.
pub fn named_paths(input: &Value) -> Vec<String> {
    let mut paths: Vec<String> = ["path", "filePath", "from_path", "to_path"]
        .iter()
        .filter_map(|key| input.get(*key).and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    if let Some(patch) = input.get("patch").and_then(Value::as_str) {
        const HEADERS: [&str; 4] = [
            "*** Add File: ",
            "*** Update File: ",
            "*** Delete File: ",
            "*** Move to: ",
        ];
        for line in patch.lines() {
            if let Some(path) = HEADERS.iter().find_map(|h| line.strip_prefix(h)) {
                paths.push(path.trim().to_owned());
            }
        }
    }
    paths
}

/// A copy of `value` whose long strings are cut, so events stay small.
pub fn bound(value: &Value) -> Value {
    match value {
        Value::String(s) if s.chars().count() > EVENT_STRING_CHARS => {
            let kept: String = s.chars().take(EVENT_STRING_CHARS).collect();
            Value::String(format!(
                "{kept}…[{} more characters]",
                s.chars().count() - EVENT_STRING_CHARS
            ))
        }
        Value::Array(items) => Value::Array(items.iter().map(bound).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), bound(v))).collect())
        }
        other => other.clone(),
    }
}

/// The prompt's parts: each attached text file as text, the prompt, each attached image as
/// an image part.
pub(super) fn prompt_parts(job: &crate::engine::Job) -> Vec<Part> {
    use base64::Engine as _;
    let mut parts = Vec::new();
    for file in job.attachments.iter().filter(|a| !a.is_image()) {
        let text = String::from_utf8_lossy(&file.bytes);
        parts.push(Part::Text {
            text: format!("Attached file `{}`:\n```\n{text}\n```", file.name),
        });
    }
    parts.push(Part::Text {
        text: job.prompt.clone(),
    });
    for image in job.attachments.iter().filter(|a| a.is_image()) {
        parts.push(Part::Image {
            media_type: image.media_type.clone(),
            data: base64::engine::general_purpose::STANDARD.encode(&image.bytes),
        });
    }
    parts
}

pub(super) fn history_messages(history: &[HistoryTurn]) -> Vec<Message> {
    history
        .iter()
        .map(|turn| Message {
            speaker: turn.speaker,
            parts: vec![Part::Text {
                text: turn.text.clone(),
            }],
        })
        .collect()
}

/// The system prompt: who the agent is, where it works, and how to use its tools.
pub fn system_prompt(template: &str) -> String {
    format!(
        "You are draftsmith, a coding agent that builds and edits a web app for the person you \
         chat with.\n\
         App template: {template}.\n\
         You work inside the app's workspace; every path you use is relative to its root. \
         Use the tools to inspect files before you change them: `list`, `glob`, `search` and \
         `read` to look, `apply_patch` for focused edits, `write` for new or wholly rewritten \
         files, `delete` and `rename` to reorganise, and `run_command` to run project commands \
         (for example `npm run build`). Never touch .git, node_modules or build output. \
         When a tool fails, read its error and correct your input. Keep your final answer \
         short: say what you changed and why."
    )
}

/// Longest contract summary put in the system prompt.
const CONTRACT_CHARS: usize = 6_000;

/// Baseline context about the runtime agent the app embeds, from the run's contract,
/// bounded to [`CONTRACT_CHARS`].
pub fn contract_context(contract: &draftsmith_contract::AgentContract) -> String {
    if contract.agent.is_none() {
        return "This app embeds no runtime AI agent.".into();
    }
    let mut summary = draftsmith_contract::describe(contract, true).to_string();
    if summary.chars().count() > CONTRACT_CHARS {
        summary = summary.chars().take(CONTRACT_CHARS).collect::<String>() + "…(truncated)";
    }
    format!(
        "This app embeds a runtime AI agent. Summary of its integration contract: {summary}\n         Call coding_agent_get_agent_integration_contract for the full tool schemas and UI hints \
         when you build UI that calls the agent's tools or shows their results."
    )
}

/// A stamp that makes a step's message id unique across runs (the clock, in hex).
pub(super) fn message_stamp() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}")
}
