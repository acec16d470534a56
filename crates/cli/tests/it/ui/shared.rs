//! Two browser windows on one app share the server's queue and its live run (through the
//! app stream), a message sent to the running turn shows in both, and after both windows
//! closed the server drained the queue: a window opened later shows every run's result.

use std::time::{Duration, Instant};

use draftsmith_core::RunStatus;
use draftsmith_core::api::QueueState;
use draftsmith_testkit::Browser;
use serde_json::json;

use super::{Ui, sign_in_browser};

/// Opens app `app` in `b` (already signed in) and waits for the builder.
async fn open_app(b: &Browser, base_url: &str, app: &str) {
    b.goto(&format!("{base_url}/#/apps/{app}")).await;
    b.wait_css("body[data-view=builder] #composer").await;
    b.wait_for(
        "the builder to load",
        "return document.querySelectorAll('#model option').length > 1 && document.querySelector('#draft-revision')",
        json!([]),
    )
    .await;
}

const QUEUED: &str = "return [...document.querySelectorAll('#queue li.queued .queued-text')].map(e => e.textContent).join('|') === arguments[0]";

async fn send(b: &Browser, prompt: &str) {
    b.type_into("#prompt", prompt).await;
    b.click("#send").await;
}

async fn no_console_errors(b: &Browser) {
    let errors: Vec<String> = b
        .console_errors()
        .await
        .into_iter()
        .filter(|e| !e.contains("Failed to load resource"))
        .collect();
    assert!(errors.is_empty(), "browser console errors: {errors:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_windows_share_the_queue_and_the_live_run() {
    let ui = Ui::start().await;
    let base = ui.server.base_url.clone();
    let a = &ui.browser;
    ui.sign_in().await;
    let app = ui.create_app("Shared", "static").await;
    let b = Browser::start().await;
    sign_in_browser(&b, &base).await;
    open_app(&b, &base, &app).await;

    // Window A starts a run; window B follows it live without being told its id.
    ui.send("Take your time").await;
    let run = loop {
        if let Some(run) = ui.runs(&app).await.into_iter().next() {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for w in [a, &b] {
        w.wait_for(
            "the live run",
            "return document.querySelector('#run-status')?.dataset.run === arguments[0] && \
               document.querySelector('.msg.assistant.streaming')?.textContent.includes('slowly')",
            json!([run.run_id.to_string()]),
        )
        .await;
    }
    assert_eq!(b.text("#send").await, "Queue");

    // Each window queues a prompt; both show the same queue, in acceptance order.
    send(a, "ZQUICK from window A").await;
    b.wait_for(
        "A's prompt in B's queue",
        QUEUED,
        json!(["ZQUICK from window A"]),
    )
    .await;
    send(&b, "ZQUICK from window B").await;
    let both = "ZQUICK from window A|ZQUICK from window B";
    for w in [a, &b] {
        w.wait_for("the shared queue", QUEUED, json!([both])).await;
    }
    // B moves its prompt first; A sees the new order.
    b.click("#queue li.queued:nth-child(2) button.up").await;
    let moved = "ZQUICK from window B|ZQUICK from window A";
    for w in [a, &b] {
        w.wait_for("the moved queue", QUEUED, json!([moved])).await;
    }
    // B sends a message to the running turn; both windows show it in the conversation.
    assert!(
        !b.js("return document.querySelector('#steer').hidden", json!([]))
            .await
            .as_bool()
            .unwrap()
    );
    b.type_into("#prompt", "Also add a footer").await;
    b.click("#steer").await;
    for w in [a, &b] {
        w.wait_for(
            "the steering message",
            "return [...document.querySelectorAll('.msg.user.steered')].some(m => m.textContent === 'Also add a footer')",
            json!([]),
        )
        .await;
    }
    a.screenshot("30-shared-queue-a").await;
    b.screenshot("31-shared-queue-b").await;

    // Both windows close while the run works and two prompts wait.
    no_console_errors(&b).await;
    b.quit().await;
    let Ui { server, browser } = ui;
    no_console_errors(&browser).await;
    browser.quit().await;

    // The server goes on alone: the run ends and both prompts run, in the queue's order.
    let admin = server.admin();
    let deadline = Instant::now() + Duration::from_secs(120);
    let runs = loop {
        let list: draftsmith_core::api::RunList = admin
            .get(&format!("/admin/apps/{app}/coding-agent/runs"), 200)
            .await;
        let queue: QueueState = admin
            .get(&format!("/admin/apps/{app}/coding-agent/queue"), 200)
            .await;
        if list.runs.len() == 3
            && list.runs.iter().all(|r| r.status.is_terminal())
            && queue.items.is_empty()
        {
            break list.runs;
        }
        assert!(Instant::now() < deadline, "the queue never drained");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let seen: Vec<(&str, RunStatus)> = runs.iter().map(|r| (r.input.as_str(), r.status)).collect();
    assert_eq!(
        seen,
        [
            ("ZQUICK from window A", RunStatus::Completed),
            ("ZQUICK from window B", RunStatus::Completed),
            ("Take your time", RunStatus::Completed),
        ]
    );
    assert!(
        runs.iter()
            .all(|r| r.chat_session_id == run.chat_session_id)
    );

    // A window opened later shows the drained queue and every run's result.
    let c = Browser::start().await;
    sign_in_browser(&c, &base).await;
    open_app(&c, &base, &app).await;
    c.wait_for(
        "the whole conversation",
        "const u = [...document.querySelectorAll('.msg.user')].map(m => m.textContent).join('|'); \
         const a = [...document.querySelectorAll('.msg.assistant')].map(m => m.textContent); \
         return u === arguments[0] && a.length === 3 && a[1].includes('Quick answer: done.') && a[2].includes('Quick answer: done.')",
        json!(["Take your time|Also add a footer|ZQUICK from window B|ZQUICK from window A"]),
    )
    .await;
    assert!(
        c.js("return document.querySelector('#queue').hidden", json!([]))
            .await
            .as_bool()
            .unwrap()
    );
    c.wait_css("#run-status[data-status=completed]").await;
    c.screenshot("32-reopened").await;
    no_console_errors(&c).await;
    c.quit().await;
    assert!(server.model().violations().is_empty());
}
