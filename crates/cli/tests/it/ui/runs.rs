//! Runs seen in the browser: streaming text and tool rows, the queue, Stop, reattaching
//! after a reload, and a dropped stream that resumes by itself.

use draftsmith_core::RunStatus;
use serde_json::json;

use draftsmith_testkit::proxy::CuttableProxy;

use super::{SLOW_ANSWER, Ui};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_create_an_app_and_stream_a_run() {
    let ui = Ui::start().await;
    let b = &ui.browser;
    ui.open().await;
    b.screenshot("01-sign-in").await;
    // A wrong token: the API's error is shown with its code.
    b.type_into("#token", "ds_wrong").await;
    b.click("#signin-submit").await;
    b.wait_css("#errors .error[data-code=UNAUTHORIZED]").await;
    assert!(b.text("#errors").await.contains("unknown token"));
    b.js("document.querySelector('#token').value = ''", json!([]))
        .await;
    ui.sign_in().await;
    b.screenshot("02-apps").await;
    let app = ui.create_app("Greeter", "static").await;

    ui.send("ZBUILD make the heading say hello").await;
    b.wait_for(
        "the prompt in the chat",
        "return [...document.querySelectorAll('.msg.user')].some(m => m.textContent.includes('ZBUILD'))",
        json!([]),
    )
    .await;
    // Streamed text shows while the run is still going, rendered as Markdown.
    b.wait_for(
        "streamed text mid-run",
        "const a = document.querySelector('.msg.assistant.streaming strong'); \
         return a && a.textContent === 'heading' && document.body.dataset.run === 'active'",
        json!([]),
    )
    .await;
    // Tool rows: plain-language intent, path chips, the active one shimmering.
    b.wait_for(
        "the write row",
        "return [...document.querySelectorAll('#timeline li.step')].some(r => \
           r.querySelector('.intent').textContent === 'Writing index.html' && \
           r.dataset.status === 'done' && r.querySelector('.chip').textContent === 'index.html')",
        json!([]),
    )
    .await;
    b.wait_for(
        "the running command to shimmer",
        "const r = document.querySelector('#timeline li.step.active'); \
         return r && r.dataset.status === 'running' && r.querySelector('.intent').textContent.startsWith('Running sleep 2')",
        json!([]),
    )
    .await;
    b.screenshot("03-run-streaming").await;
    ui.wait_status("completed").await;
    let rows = b
        .js(
            "return [...document.querySelectorAll('#timeline li.step')].map(r => [r.querySelector('.intent').textContent, r.dataset.status])",
            json!([]),
        )
        .await;
    assert_eq!(
        rows,
        json!([
            ["Writing index.html", "done"],
            ["Running sleep 2; grep -c agent index.html", "done"],
            ["Reading index.html", "done"]
        ])
    );
    assert_eq!(
        b.js(
            "return document.querySelectorAll('#timeline .active').length",
            json!([])
        )
        .await,
        0
    );
    let milestones = b
        .js(
            "return [...document.querySelectorAll('#timeline li.milestone:not(.usage)')].map(m => m.textContent)",
            json!([]),
        )
        .await;
    let milestones: Vec<String> = serde_json::from_value(milestones).unwrap();
    // The run's tokens and cost, from its terminal event, close the timeline.
    let usage = b
        .js(
            "const u = [...document.querySelectorAll('#timeline li.milestone')]; \
             const last = u[u.length - 1]; \
             return last && last.classList.contains('usage') ? last.textContent : null",
            json!([]),
        )
        .await;
    let usage = usage.as_str().unwrap_or_default().to_owned();
    let (total, rest) = usage.split_once(" tokens (").unwrap_or(("", ""));
    let total: u64 = total.replace(',', "").parse().unwrap_or(0);
    assert!(total > 0, "no tokens shown: {usage:?}");
    assert!(
        rest.contains(" in, ") && rest.contains(" out") && rest.contains(") · $"),
        "{usage:?}"
    );
    // The app's usage panel (its only run so far) says the same, once the run has ended.
    b.wait_for(
        "the app's usage panel",
        "const u = document.querySelector('#usage-box #app-usage'); \
         return u && u.textContent === arguments[0]",
        json!([usage]),
    )
    .await;
    assert!(
        milestones[0].starts_with("Sandbox ready · "),
        "{milestones:?}"
    );
    assert_eq!(
        milestones.last().unwrap(),
        "Draft revision 2: 0 added, 1 modified, 0 deleted"
    );
    let texts = ui.assistant_texts().await;
    assert_eq!(texts.len(), 1);
    assert!(
        texts[0].starts_with("I'll update the heading of index.html now."),
        "{texts:?}"
    );
    assert!(
        texts[0].contains("Done. The page now greets you:"),
        "{texts:?}"
    );
    // The code block is highlighted.
    assert_eq!(
        b.text(".msg.assistant pre.code .tok-keyword").await,
        "const"
    );
    assert_eq!(
        b.text(".msg.assistant pre.code .tok-string").await,
        "\"Hello from the agent\""
    );
    b.screenshot("04-run-completed").await;

    // The draft's files, refreshed after the run, and the file viewer.
    b.click("#tab-files").await;
    b.wait_css("#draft-revision[data-revision='2']").await;
    b.click("button[aria-label='Open index.html']").await;
    b.wait_for(
        "the file viewer",
        "return document.querySelector('#viewer').textContent.includes('Hello from the agent')",
        json!([]),
    )
    .await;
    // The live preview shows the changed page.
    b.click("#tab-preview").await;
    let greeting = b
        .wait_in_frame(
            "iframe.preview",
            "the preview to show the new heading",
            "const g = document.querySelector('#greeting'); return g && g.textContent",
            json!([]),
        )
        .await;
    assert_eq!(greeting, "Hello from the agent");
    b.screenshot("05-preview").await;

    // Reopened: the session's history, the sessions list and the last run's timeline.
    b.refresh().await;
    b.wait_css("body[data-view=builder] .sessions .session.current")
        .await;
    b.wait_css("#run-status[data-status=completed]").await;
    b.wait_for(
        "the history",
        "return document.querySelectorAll('.msg.user').length === 1 && \
           [...document.querySelectorAll('.msg.assistant')].some(m => m.textContent.includes('greets you')) && \
           document.querySelectorAll('.msg.assistant details.turn-steps[open] #timeline li.step').length === 3",
        json!([]),
    )
    .await;
    // A new chat starts empty and shows up in the list after its first prompt.
    b.click(".new-chat").await;
    b.wait_for(
        "an empty chat",
        "return document.querySelectorAll('.msg').length === 0",
        json!([]),
    )
    .await;
    ui.send("ZQUICK hello again").await;
    ui.wait_status("completed").await;
    b.wait_for(
        "two sessions",
        "return document.querySelectorAll('.sessions .session').length === 2",
        json!([]),
    )
    .await;
    assert_eq!(ui.runs(&app).await.len(), 2);
    // Switch back to the first chat: its history comes back.
    b.click(".sessions .session:not(.current)").await;
    b.wait_for(
        "the first chat's history",
        "const u = [...document.querySelectorAll('.msg.user')].map(m => m.textContent); \
         return u.length === 1 && u[0] === 'ZBUILD make the heading say hello'",
        json!([]),
    )
    .await;
    // Each run's steps fold into the turn that caused it; an earlier turn's open on demand,
    // read from its run's log.
    b.wait_css(".msg.assistant details.turn-steps:not([open])")
        .await;
    assert_eq!(
        b.js(
            "return document.querySelectorAll('.msg.assistant li.step').length",
            json!([])
        )
        .await,
        json!(0)
    );
    b.click(".msg.assistant details.turn-steps > summary").await;
    b.wait_for(
        "the earlier run's steps in its turn",
        "const rows = [...document.querySelectorAll('.msg.assistant details.turn-steps[open] li.step')]; \
         return rows.length === 3 && rows.every(r => r.dataset.status === 'done')",
        json!([]),
    )
    .await;
    ui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_two_remove_one_stop_and_the_queue_goes_on() {
    let ui = Ui::start().await;
    let b = &ui.browser;
    ui.sign_in().await;
    let app = ui.create_app("Queue", "static").await;
    ui.send("Take your time").await;
    b.wait_for(
        "the slow answer to stream",
        "return document.querySelector('.msg.assistant.streaming')?.textContent.includes('slowly')",
        json!([]),
    )
    .await;
    assert_eq!(b.text("#send").await, "Queue");
    ui.send("ZQUICK first queued").await;
    ui.send("ZQUICK second queued").await;
    b.wait_for(
        "two queued prompts",
        "return document.querySelectorAll('#queue li.queued').length === 2",
        json!([]),
    )
    .await;
    assert!(
        !b.js("return document.querySelector('#queue').hidden", json!([]))
            .await
            .as_bool()
            .unwrap()
    );
    b.screenshot("06-queue").await;
    // Remove the first; the second stays.
    b.click("#queue li.queued:first-child button.remove").await;
    b.wait_for(
        "one queued prompt",
        "const q = [...document.querySelectorAll('#queue li.queued .queued-text')].map(e => e.textContent); \
         return q.length === 1 && q[0] === 'ZQUICK second queued'",
        json!([]),
    )
    .await;
    // The queue is the server's: what the page shows is what the API holds.
    let queue: draftsmith_core::api::QueueState = ui
        .server
        .admin()
        .get(&format!("/admin/apps/{app}/coding-agent/queue"), 200)
        .await;
    let held: Vec<&str> = queue.items.iter().map(|i| i.input.as_str()).collect();
    assert_eq!(held, ["ZQUICK second queued"]);

    // Stop cancels the run on the server; the queued prompt then starts by itself.
    b.click("#stop").await;
    b.wait_for(
        "the stop note",
        "return [...document.querySelectorAll('.note')].some(n => n.textContent === 'Run stopped.')",
        json!([]),
    )
    .await;
    b.wait_for(
        "the queued prompt to start",
        "const u = [...document.querySelectorAll('.msg.user')].map(m => m.textContent); \
         return u.length === 2 && u[1] === 'ZQUICK second queued' && document.querySelectorAll('#queue li.queued').length === 0",
        json!([]),
    )
    .await;
    ui.wait_status("completed").await;
    b.wait_for(
        "the quick answer",
        "return [...document.querySelectorAll('.msg.assistant')].pop().textContent.includes('Quick answer: done.')",
        json!([]),
    )
    .await;
    b.screenshot("07-after-stop").await;
    let runs = ui.runs(&app).await;
    let seen: Vec<(&str, RunStatus)> = runs.iter().map(|r| (r.input.as_str(), r.status)).collect();
    assert_eq!(
        seen,
        [
            ("ZQUICK second queued", RunStatus::Completed),
            ("Take your time", RunStatus::Cancelled)
        ]
    );
    assert_eq!(runs[0].chat_session_id, runs[1].chat_session_id);
    ui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_resumes_and_a_reload_reattaches_mid_run() {
    let ui = Ui::start().await;
    let b = &ui.browser;
    // The browser talks to the server through a proxy that can cut its connections.
    let proxy = CuttableProxy::start(ui.server.base_url.trim_start_matches("http://")).await;
    ui.sign_in_at(&proxy.base_url).await;
    let app = ui.create_app("Reload", "static").await;
    ui.send("Take your time").await;
    b.wait_for(
        "the first words",
        "return document.querySelector('.msg.assistant.streaming')?.textContent.includes('slowly')",
        json!([]),
    )
    .await;
    // The connection drops for real: the follower reconnects by itself after the last seq.
    let seq_before = b.js("return window.draftsmith.lastSeq()", json!([])).await;
    assert!(proxy.cut() >= 1, "no open connection to cut");
    b.wait_for(
        "a resumed stream",
        "return window.draftsmith.reconnects() >= 1 && window.draftsmith.lastSeq() > arguments[0] && \
           document.querySelector('#stream-state').dataset.state === 'live'",
        json!([seq_before]),
    )
    .await;
    b.wait_for(
        "more words",
        "return document.querySelector('.msg.assistant.streaming')?.textContent.includes('reload the page')",
        json!([]),
    )
    .await;
    // A reload in the middle of the run reattaches to it, and keeps the queue.
    ui.send("ZQUICK after the reload").await;
    b.wait_css("#queue li.queued").await;
    assert_eq!(ui.runs(&app).await[0].status, RunStatus::Running);
    b.refresh().await;
    b.wait_css("body[data-view=builder]").await;
    b.wait_css("#run-status[data-status=running]").await;
    b.wait_css(".msg.assistant.streaming").await;
    assert_eq!(
        b.text("#queue li.queued .queued-text").await,
        "ZQUICK after the reload"
    );
    b.screenshot("08-reattached").await;
    // Then the queued prompt runs.
    b.wait_for(
        "the queued prompt to run after the reattached one",
        "return document.querySelectorAll('.msg.user').length === 2 && document.querySelectorAll('#queue li.queued').length === 0",
        json!([]),
    )
    .await;
    ui.wait_status("completed").await;
    b.wait_for(
        "the quick answer",
        "return [...document.querySelectorAll('.msg.assistant')].pop().textContent.includes('Quick answer')",
        json!([]),
    )
    .await;
    // No gap and no duplicate: the whole answer exactly once.
    let texts = ui.assistant_texts().await;
    assert_eq!(texts, [SLOW_ANSWER, "Quick answer: done."]);
    let runs = ui.runs(&app).await;
    let seen: Vec<RunStatus> = runs.iter().map(|r| r.status).collect();
    assert_eq!(seen, [RunStatus::Completed, RunStatus::Completed]);
    ui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_elsewhere_is_followed_and_the_prompt_waits_for_it() {
    let ui = Ui::start().await;
    let b = &ui.browser;
    ui.sign_in().await;
    let app = ui.create_app("Elsewhere", "static").await;
    // Another client starts a run; this page does not know yet.
    let admin = ui.server.admin();
    let other: draftsmith_core::api::Run = admin
        .post(
            &format!("/admin/apps/{app}/coding-agent/runs"),
            &json!({"input": "Take your time"}),
            201,
        )
        .await;
    // Sending now queues the prompt on the server (202), and the page follows that run.
    ui.send("ZQUICK mine").await;
    b.wait_for(
        "the other run to be followed",
        "return document.querySelector('#run-status')?.dataset.run === arguments[0]",
        json!([other.run_id.to_string()]),
    )
    .await;
    // The prompt waits in the server's queue, which the page shows.
    b.wait_for(
        "the queued prompt",
        "return document.querySelector('#queue li.queued .queued-text')?.textContent === 'ZQUICK mine'",
        json!([]),
    )
    .await;
    b.wait_for(
        "the other run's words",
        "return document.querySelector('.msg.assistant.streaming')?.textContent.includes('slowly')",
        json!([]),
    )
    .await;
    // When it ends, the queued prompt starts by itself.
    b.wait_for(
        "the queued prompt to run",
        "return [...document.querySelectorAll('.msg.user')].some(m => m.textContent === 'ZQUICK mine') && \
           document.querySelectorAll('#queue li.queued').length === 0",
        json!([]),
    )
    .await;
    ui.wait_status("completed").await;
    let runs = ui.runs(&app).await;
    let seen: Vec<(&str, RunStatus)> = runs.iter().map(|r| (r.input.as_str(), r.status)).collect();
    assert_eq!(
        seen,
        [
            ("ZQUICK mine", RunStatus::Completed),
            ("Take your time", RunStatus::Completed)
        ]
    );
    ui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_shows_its_code_and_the_queue_goes_on() {
    let ui = Ui::start().await;
    let b = &ui.browser;
    ui.sign_in().await;
    let app = ui.create_app("Failing", "static").await;
    ui.send("ZFAIL please").await;
    b.wait_css(".msg.assistant.streaming").await;
    ui.send("ZQUICK after the failure").await;
    b.wait_css("#queue li.queued").await;
    // The run fails: its error is shown with its code, the timeline says so too.
    b.wait_for(
        "the failure note",
        "return [...document.querySelectorAll('.note.error')].some(n => n.textContent.startsWith('Run failed — CODING_AGENT_MODEL_ERROR: '))",
        json!([]),
    )
    .await;
    b.screenshot("15-failed-run").await;
    // Then the queued prompt starts by itself and completes.
    b.wait_for(
        "the queued prompt to run",
        "return [...document.querySelectorAll('.msg.user')].some(m => m.textContent === 'ZQUICK after the failure') && \
           document.querySelectorAll('#queue li.queued').length === 0",
        json!([]),
    )
    .await;
    ui.wait_status("completed").await;
    let runs = ui.runs(&app).await;
    let seen: Vec<(&str, RunStatus)> = runs.iter().map(|r| (r.input.as_str(), r.status)).collect();
    assert_eq!(
        seen,
        [
            ("ZQUICK after the failure", RunStatus::Completed),
            ("ZFAIL please", RunStatus::Failed)
        ]
    );
    ui.finish().await;
}
