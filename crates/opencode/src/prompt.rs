//! What OpenCode is asked: the person's message after the chat's bounded history, the
//! run's pinned model, and draftsmith's instructions on top of OpenCode's own system prompt.

use draftsmith_engine::Job;
use draftsmith_engine::history::{HistoryTurn, render_transcript};

use crate::client::{ModelRef, PartInput, PromptBody};

/// The prompt: the bounded chat history first (rendered by the formatter both engines
/// share), then the person's new message.
pub fn prompt_text(history: &[HistoryTurn], prompt: &str) -> String {
    if history.is_empty() {
        return prompt.to_owned();
    }
    format!(
        "Earlier messages of this chat, for context:\n\n{}---\n\n{prompt}",
        render_transcript(history)
    )
}

/// The prompt body for `job`: attached text files as text (as the native engine sends
/// them), the prompt, then each attached image as an OpenCode file part with a `data:` URL.
pub fn prompt_body(job: &Job) -> PromptBody {
    use base64::Engine as _;
    let mut parts = Vec::with_capacity(job.attachments.len() + 1);
    for file in job.attachments.iter().filter(|a| !a.is_image()) {
        let text = String::from_utf8_lossy(&file.bytes);
        parts.push(PartInput::Text {
            text: format!("Attached file `{}`:\n```\n{text}\n```", file.name),
        });
    }
    parts.push(PartInput::Text {
        text: prompt_text(&job.history, &job.prompt),
    });
    for image in job.attachments.iter().filter(|a| a.is_image()) {
        let data = base64::engine::general_purpose::STANDARD.encode(&image.bytes);
        parts.push(PartInput::File {
            mime: image.media_type.clone(),
            filename: image.name.clone(),
            url: format!("data:{};base64,{data}", image.media_type),
        });
    }
    PromptBody {
        model: ModelRef::of(&job.model),
        system: Some(system_prompt(&job.template, &job.contract)),
        parts,
        no_reply: false,
    }
}

/// A steering message's prompt: what the person sent while the session worked, as the
/// session's next prompt (its earlier turns are in the session already).
pub fn steering_body(job: &Job, messages: &[String]) -> PromptBody {
    PromptBody {
        model: ModelRef::of(&job.model),
        system: Some(system_prompt(&job.template, &job.contract)),
        parts: messages
            .iter()
            .map(|text| PartInput::Text { text: text.clone() })
            .collect(),
        no_reply: false,
    }
}

/// What OpenCode's agent is told about draftsmith, on top of its own system prompt: the
/// same baseline contract context the native engine gives its model.
fn system_prompt(template: &str, contract: &draftsmith_engine::AgentContract) -> String {
    let contract = draftsmith_engine::native::contract_context(contract);
    let base = format!(
        "You are draftsmith's coding agent, building and editing a web app (template: {template}) \
         in this workspace for the person you chat with. Keep every file inside the workspace; \
         never touch .git, node_modules or build output. The tools \
         coding_agent_get_agent_integration_contract and \
         coding_agent_describe_selected_agent_contract describe the runtime agent the app \
         embeds. When a tool fails, read its error and correct your input. Keep your final \
         answer short: say what you changed and why."
    );
    if contract.is_empty() {
        base
    } else {
        format!("{base}\n\n{contract}")
    }
}

#[cfg(test)]
mod tests {
    use draftsmith_engine::model::Speaker;

    use super::*;

    #[test]
    fn the_history_comes_before_the_new_prompt() {
        assert_eq!(prompt_text(&[], "Add a footer"), "Add a footer");
        let history = [
            HistoryTurn {
                speaker: Speaker::User,
                text: "Make a landing page".into(),
            },
            HistoryTurn {
                speaker: Speaker::Assistant,
                text: "Done: index.html".into(),
            },
        ];
        let text = prompt_text(&history, "Add a footer");
        let user = text.find("User: Make a landing page").unwrap_or(usize::MAX);
        let assistant = text
            .find("Assistant: Done: index.html")
            .unwrap_or(usize::MAX);
        let prompt = text.rfind("Add a footer").unwrap_or_default();
        assert!(user < assistant && assistant < prompt, "{text}");
    }
}
