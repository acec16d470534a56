//! Publishing in the browser: the Publish tab publishes and lists releases; a published
//! Vite app renders and its JavaScript runs; a published page's script cannot act as the
//! signed-in builder.

use draftsmith_core::publish::Release;
use serde_json::{Value, json};

use super::Ui;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_from_the_builder_and_the_page_cannot_use_the_session() {
    let ui = Ui::start().await;
    let b = &ui.browser;
    ui.sign_in().await;
    let app_id = ui.create_app("Published", "static").await;
    let admin = ui.server.admin();
    // The page's own script tries to read the builder's API with the builder's cookie.
    let probe = r#"<!doctype html><meta charset="utf-8"><title>probe</title><p id="out">waiting</p>
<script>
(async () => {
  const out = document.getElementById('out');
  let cookie;
  try { cookie = document.cookie === '' ? 'empty' : 'readable'; } catch (e) { cookie = 'denied'; }
  try {
    const r = await fetch('/admin/apps', { credentials: 'include' });
    const text = await r.text();
    out.dataset.result = r.status + ':' + (text.includes('"apps"') ? 'data' : 'nodata') + ':' + cookie;
  } catch (e) {
    out.dataset.result = 'blocked:' + cookie;
  }
})();
</script>
"#;
    let (_, revision) = admin
        .get_bytes(&format!("/admin/apps/{app_id}/draft/files/index.html"))
        .await;
    admin
        .put_bytes(
            &format!("/admin/apps/{app_id}/draft/files/index.html"),
            probe.as_bytes().to_vec(),
            Some(&revision.to_string()),
            200,
        )
        .await;
    b.click("#tab-publish").await;
    b.wait_css("#publish").await;
    b.click("#publish").await;
    b.wait_css("#releases li.release[data-live=true]").await;
    let url = b.text("#published-url a").await;
    assert!(url.ends_with("/p/published/"), "{url}");
    b.screenshot("16-published").await;
    // The builder is signed in (its cookie is set); the published page still gets nothing.
    b.goto(&url).await;
    let result = b
        .wait_for(
            "the probe's result",
            "return document.getElementById('out')?.dataset.result || null",
            json!([]),
        )
        .await;
    let result = result.as_str().unwrap().to_owned();
    assert!(
        result == "blocked:denied" || !result.contains("data:"),
        "the published page read the builder's API: {result}"
    );
    assert!(result.ends_with(":denied"), "{result}");
    // The refused fetch is logged by the page itself, so the console is not asked to be clean.
    ui.browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_vite_app_renders_and_runs() {
    let ui = Ui::start().await;
    let b = &ui.browser;
    let admin = ui.server.admin();
    let app: Value = admin
        .post(
            "/admin/apps",
            &json!({"name": "Counter", "template": "vite-react"}),
            201,
        )
        .await;
    let id = app["id"].as_str().unwrap();
    let release: Release = admin
        .post(&format!("/admin/apps/{id}/releases"), &json!({}), 201)
        .await;
    let files: Release = admin
        .get(&format!("/admin/apps/{id}/releases/{}", release.id), 200)
        .await;
    let paths: Vec<String> = files.files.unwrap().into_iter().map(|f| f.path).collect();
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("assets/") && p.ends_with(".js")),
        "{paths:?}"
    );
    assert!(
        release.build_log.contains("built in"),
        "{}",
        release.build_log
    );
    // A deep client-side route serves the app too, its relative assets included.
    for path in ["", "settings/profile"] {
        b.goto(&format!("{}/p/counter/{path}", ui.server.base_url))
            .await;
        b.wait_css("main.app button").await;
        assert_eq!(b.text("main.app button").await, "Count is 0");
        b.click("main.app button").await;
        b.click("main.app button").await;
        b.wait_for(
            "the counter to count",
            "return document.querySelector('main.app button').textContent === 'Count is 2'",
            json!([]),
        )
        .await;
    }
    ui.finish().await;
}
