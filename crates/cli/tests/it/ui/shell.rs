//! The shell around the builder: an ended session leads back to the sign-in form, and
//! signing in again returns to the app that was open; signing out ends the session.

use draftsmith_testkit::ADMIN_TOKEN;
use serde_json::json;

use super::Ui;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_asks_to_sign_in_again_and_returns_to_the_app() {
    let ui = Ui::start().await;
    let b = &ui.browser;
    ui.sign_in().await;
    let app = ui.create_app("Session", "static").await;
    // The cookie goes away (expired, or signed out elsewhere): the next call is a 401.
    b.delete_cookies().await;
    ui.send("ZQUICK are you there").await;
    b.wait_css("body[data-view=signin] #token").await;
    assert!(b.text("#signin").await.contains("Your session has ended"));
    // Signing in again goes back to the same app, and the prompt, kept, is sent then.
    b.type_into("#token", ADMIN_TOKEN).await;
    b.click("#signin-submit").await;
    b.wait_css("body[data-view=builder] #composer").await;
    let hash = b.js("return location.hash", json!([])).await;
    assert_eq!(hash, json!(format!("#/apps/{app}")));
    ui.wait_status("completed").await;
    let runs = ui.runs(&app).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].input, "ZQUICK are you there");
    // Signing out ends the session on the server too.
    b.click("#sign-out").await;
    b.wait_css("body[data-view=signin]").await;
    let status = b
        .js_async(
            "const done = arguments[arguments.length - 1]; \
             fetch('/admin/apps', {credentials: 'same-origin'}).then(r => done(r.status))",
            json!([]),
        )
        .await;
    assert_eq!(status, 401);
    ui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_times_are_kept_true() {
    let ui = Ui::start().await;
    let b = &ui.browser;
    ui.open().await;
    // A time made two minutes ago still says what it said then until the page refreshes it.
    let shown = b
        .js_async(
            "const done = arguments[arguments.length - 1]; \
             import('/ui/assets/js/dom.js').then(m => { \
               const iso = new Date(Date.now() - 120000).toISOString(); \
               const el = m.timeEl(iso); const before = el.textContent; el.textContent = '0s ago'; \
               document.body.append(el); m.refreshTimes(); done([before, el.textContent]); })",
            json!([]),
        )
        .await;
    assert_eq!(shown, json!(["2 min ago", "2 min ago"]));
    ui.finish().await;
}

/// A wait outlives a call the driver fails (a script stuck behind a frame's navigation
/// times out; here the first poll throws), and polls again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_polls_again_after_the_driver_fails_a_call() {
    let ui = Ui::start().await;
    let b = &ui.browser;
    ui.open().await;
    let seen = b
        .wait_for(
            "a poll after the stuck one",
            "if (window.polled) { return ++window.polled; } \
             window.polled = 1; throw new Error('the frame is being replaced')",
            json!([]),
        )
        .await;
    // The first poll failed; a later one answered.
    assert!(seen.as_u64().is_some_and(|n| n >= 2), "{seen}");
    ui.finish().await;
}
