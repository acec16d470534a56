//! Accessibility basics: every control has an accessible name and sits in the Tab order,
//! on every view; and a whole flow (sign in, create an app, send a prompt) done with the
//! keyboard alone.

use draftsmith_testkit::ADMIN_TOKEN;
use draftsmith_testkit::browser::key;
use serde_json::{Value, json};

use super::Ui;

/// Controls without a name, or taken out of the Tab order, on the current page.
const AUDIT: &str = r#"
const name = (el) => {
  const by = el.getAttribute('aria-labelledby');
  return (el.getAttribute('aria-label') || '').trim()
    || (by ? by.split(' ').map(id => document.getElementById(id)?.textContent || '').join(' ').trim() : '')
    || [...(el.labels || [])].map(l => l.textContent).join(' ').trim()
    || (['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName) ? '' : el.textContent.trim())
    || (el.getAttribute('title') || '').trim();
};
const bad = [];
let count = 0;
for (const el of document.querySelectorAll('button, input, select, textarea, a[href], summary, [role=tab], iframe')) {
  if (el.closest('[hidden]') || el.type === 'hidden') continue;
  count++;
  const what = el.outerHTML.slice(0, 100);
  if (el.tagName === 'IFRAME' ? !el.title : !name(el)) bad.push('no accessible name: ' + what);
  if (el.getAttribute('tabindex') === '-1') bad.push('not reachable by Tab: ' + what);
}
return {count, bad};
"#;

async fn audit(ui: &Ui, view: &str, at_least: u64) {
    let result = ui.browser.js(AUDIT, json!([])).await;
    assert_eq!(result["bad"], json!([]), "{view}: {:#}", result["bad"]);
    let count = result["count"].as_u64().unwrap();
    assert!(count >= at_least, "{view}: only {count} controls audited");
}

/// Presses Tab until the focus is on `css` (at most 40 times): proof it is reachable.
async fn tab_to(ui: &Ui, css: &str) {
    for _ in 0..40 {
        let here: Value = ui
            .browser
            .js(
                "return document.activeElement.matches(arguments[0])",
                json!([css]),
            )
            .await;
        if here == json!(true) {
            return;
        }
        ui.browser.keys(key::TAB).await;
    }
    panic!("{css} is not reachable with Tab");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_control_is_labelled_and_reachable_by_keyboard() {
    let ui = Ui::start().await;
    let b = &ui.browser;
    ui.open().await;
    audit(&ui, "sign-in", 3).await;

    // Sign in with the keyboard: the token field has the focus.
    tab_to(&ui, "#token").await;
    b.keys(&format!("{ADMIN_TOKEN}{}", key::ENTER)).await;
    b.wait_css("body[data-view=apps] #new-app").await;
    b.wait_css("#app-template option").await;
    audit(&ui, "apps", 4).await;

    // Create an app with the keyboard.
    tab_to(&ui, "#app-name").await;
    b.keys("Keyboard app").await;
    tab_to(&ui, "#create-app").await;
    b.keys(key::ENTER).await;
    b.wait_css("body[data-view=builder] #composer").await;
    ui.wait_idle().await;

    // Send a prompt with the keyboard: Enter in the prompt sends it.
    tab_to(&ui, "#prompt").await;
    b.keys(&format!("ZQUICK typed{}", key::ENTER)).await;
    ui.wait_status("completed").await;
    b.wait_for(
        "the answer",
        "return document.querySelector('.msg.assistant')?.textContent.includes('Quick answer')",
        json!([]),
    )
    .await;
    // The tabs are reachable and switch with Enter.
    tab_to(&ui, "#tab-checkpoints").await;
    b.keys(key::ENTER).await;
    b.wait_css("#panel-checkpoints:not([hidden]) li.checkpoint")
        .await;
    audit(&ui, "builder", 12).await;
    // Every panel, shown at once, and the confirmation dialog.
    b.js(
        "document.querySelectorAll('[role=tabpanel]').forEach(p => p.hidden = false)",
        json!([]),
    )
    .await;
    b.wait_css("#panel-caps #cap-engine").await;
    audit(&ui, "builder, all panels", 20).await;
    b.click("li.checkpoint[data-kind=pre_run] button.restore")
        .await;
    b.wait_css("dialog.confirm[open]").await;
    audit(&ui, "confirmation", 2).await;
    // The dialog takes the focus and Escape closes it.
    let focused = b
        .js(
            "return document.activeElement.closest('dialog') !== null",
            json!([]),
        )
        .await;
    assert_eq!(focused, json!(true));
    b.keys("\u{E00C}").await;
    b.wait_for(
        "the dialog to close",
        "return !document.querySelector('dialog.confirm')",
        json!([]),
    )
    .await;
    b.screenshot("13-keyboard").await;
    ui.finish().await;
}
