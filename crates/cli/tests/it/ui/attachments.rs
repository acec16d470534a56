//! Attachments in the browser: an image pasted into the composer shows as a thumbnail, goes
//! with the prompt to a model with vision, and shows in the chat history after a reload.

use base64::Engine as _;
use serde_json::json;

use super::Ui;
use crate::attachments::PNG;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pasted_image_goes_with_the_prompt_and_stays_in_the_history() {
    let ui = Ui::start().await;
    let b = &ui.browser;
    ui.sign_in().await;
    let app = ui.create_app("Shots", "static").await;
    // A model with vision (the default one has none).
    b.js(
        "const s = document.querySelector('#model'); s.value = 'mock-anthropic/claude'; \
         s.dispatchEvent(new Event('change'))",
        json!([]),
    )
    .await;
    let png = base64::engine::general_purpose::STANDARD.encode(PNG);
    b.js(
        "const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0)); \
         const data = new DataTransfer(); \
         data.items.add(new File([bytes], 'shot.png', { type: 'image/png' })); \
         document.querySelector('#prompt').dispatchEvent(new ClipboardEvent('paste', \
           { clipboardData: data, bubbles: true, cancelable: true }));",
        json!([png]),
    )
    .await;
    b.wait_for(
        "the thumbnail in the composer",
        "const i = document.querySelector('#attached img.thumb'); \
         return i && i.complete && i.naturalWidth === 1 && i.alt === 'shot.png'",
        json!([]),
    )
    .await;
    b.screenshot("attachments-01-composer").await;
    ui.send("ZQUICK make it look like this").await;
    ui.wait_status("completed").await;
    assert_eq!(
        b.js(
            "return document.querySelectorAll('#attached li').length",
            json!([])
        )
        .await,
        0,
        "the composer is emptied once sent"
    );
    let runs = ui.runs(&app).await;
    assert_eq!(runs.len(), 1);
    let request = ui.server.model().requests().pop().unwrap();
    let encoded = request.body.to_string();
    assert!(encoded.contains(&png), "the image reached the model");
    b.refresh().await;
    b.wait_for(
        "the thumbnail in the history after a reload",
        "return [...document.querySelectorAll('.msg.user')].some(m => { \
           const i = m.querySelector('img.thumb'); \
           return i && i.complete && i.naturalWidth === 1 && m.textContent.includes('ZQUICK make it'); })",
        json!([]),
    )
    .await;
    b.screenshot("attachments-02-history").await;
    ui.finish().await;
}
