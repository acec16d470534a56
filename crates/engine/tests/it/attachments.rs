//! Attached files reach the model: images as the provider's image parts (an OpenAI-compatible
//! `image_url` data URL, an Anthropic `image` block), text files as text.

use base64::Engine as _;
use draftsmith_engine::{Attachment, ModelSettings, Outcome, ProviderKind};
use serde_json::{Value, json};

use crate::native::{Setup, run_native_with};

/// A 1×1 transparent PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52, 0, 0, 0,
    1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0d, 0x49, 0x44, 0x41, 0x54,
    0x78, 0x9c, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0d, 0x0a, 0x2d, 0xb4, 0, 0, 0, 0, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

const ANSWER: &str =
    r#"{"scenarios": [{"name": "look", "turns": [{"steps": [{"text": "Nice mock-up."}]}]}]}"#;

fn attached() -> Setup {
    Setup {
        attachments: vec![
            Attachment {
                name: "mockup.png".into(),
                media_type: "image/png".into(),
                bytes: PNG.to_vec(),
            },
            Attachment {
                name: "notes.md".into(),
                media_type: "text/plain".into(),
                bytes: b"Use a blue header.".to_vec(),
            },
        ],
        ..Setup::default()
    }
}

fn last_user_content(body: &Value) -> Vec<Value> {
    let messages = body["messages"].as_array().unwrap();
    let user = messages.iter().rev().find(|m| m["role"] == "user").unwrap();
    user["content"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_image_reaches_an_openai_compatible_model_as_a_data_url() {
    let ran = run_native_with(
        ANSWER,
        ProviderKind::OpenAi,
        "gpt-4o",
        ModelSettings::default(),
        attached(),
    )
    .await;
    assert_eq!(ran.model.violations(), Vec::<String>::new());
    assert!(matches!(ran.finished.outcome, Outcome::Completed { .. }));
    let request = ran.model.requests().pop().unwrap();
    let content = last_user_content(&request.body);
    assert_eq!(content.len(), 2, "{content:?}");
    assert_eq!(content[0]["type"], "text");
    let text = content[0]["text"].as_str().unwrap();
    assert!(text.contains("Attached file `notes.md`") && text.contains("Use a blue header."));
    assert!(text.ends_with("Read the notes."));
    assert_eq!(content[1]["type"], "image_url");
    let url = content[1]["image_url"]["url"].as_str().unwrap();
    let data = url.strip_prefix("data:image/png;base64,").unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    assert_eq!(decoded, PNG);
}

#[tokio::test]
async fn an_image_reaches_an_anthropic_model_as_an_image_block() {
    let ran = run_native_with(
        ANSWER,
        ProviderKind::Anthropic,
        "claude-sonnet-4-5",
        ModelSettings::default(),
        attached(),
    )
    .await;
    assert_eq!(ran.model.violations(), Vec::<String>::new());
    assert!(matches!(ran.finished.outcome, Outcome::Completed { .. }));
    let request = ran.model.requests().pop().unwrap();
    let content = last_user_content(&request.body);
    let image = content.iter().find(|b| b["type"] == "image").unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(PNG);
    assert_eq!(
        image["source"],
        json!({"type": "base64", "media_type": "image/png", "data": encoded})
    );
    let texts: Vec<&str> = content
        .iter()
        .filter(|b| b["type"] == "text")
        .map(|b| b["text"].as_str().unwrap())
        .collect();
    assert!(texts[0].contains("Use a blue header."), "{texts:?}");
    assert_eq!(texts[1], "Read the notes.");
}
