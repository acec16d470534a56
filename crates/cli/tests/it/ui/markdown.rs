//! The UI's Markdown renderer and highlighter, run in Chromium against the cases in
//! `fixtures/ui/markdown.json` (`markdown` in, the exact `html` out): anyone can add a case.

use serde_json::{Value, json};

use super::Ui;

const CASES: &str = include_str!("../../fixtures/ui/markdown.json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markdown_renders_the_fixture_cases_safely() {
    let ui = Ui::start().await;
    let b = &ui.browser;
    ui.open().await;
    let cases: Vec<Value> = serde_json::from_str(CASES).unwrap();
    let sources: Vec<&str> = cases
        .iter()
        .map(|c| c["markdown"].as_str().unwrap())
        .collect();
    let rendered = b
        .js_async(
            "const done = arguments[arguments.length - 1]; \
             import('/ui/assets/js/markdown.js').then(m => done(arguments[0].map(src => { \
               const d = document.createElement('div'); d.append(m.renderMarkdown(src)); return d.innerHTML; })))",
            json!([sources]),
        )
        .await;
    let mut wrong = Vec::new();
    for (case, html) in cases.iter().zip(rendered.as_array().unwrap()) {
        if case["html"] != *html {
            wrong.push(format!(
                "{}:\n  expected {}\n  got      {html}",
                case["name"], case["html"]
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Nothing the renderer produced ran or loaded: no element carries an event handler.
    let handlers = b
        .js("return document.querySelectorAll('[onerror], [onload], script:not([type=module])').length", json!([]))
        .await;
    assert_eq!(handlers, 0);
    ui.finish().await;
}
