//! The builder web UI in a real headless Chromium (Debian's `chromium` through
//! `chromedriver`) against the real server and the scripted model on the native engine.
//! Every wait polls the DOM with a deadline; screenshots of the main states go to
//! `artifacts/ui/`. Missing chromium or chromedriver fails the tests with a hint.

mod a11y;
mod attachments;
mod draft;
mod live;
mod markdown;
mod publish;
mod runs;
mod shared;
mod shell;

use draftsmith_core::api::{Run, RunList};
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_service::config::ProviderConfig;
use draftsmith_testkit::server::config_for_model;
use draftsmith_testkit::{ADMIN_TOKEN, Browser, StoreKind, TestServer};
use serde_json::json;

/// The scripted model of every UI test: `ZQUICK` answers at once, `ZBUILD` edits
/// `index.html` (with a slow `run_command` step), anything else streams slowly.
const SCRIPT: &str = include_str!("../../fixtures/ui/builder.json");

/// A server with the scripted model, plus one model whose provider has no key, and a browser.
pub struct Ui {
    pub server: TestServer,
    pub browser: Browser,
}

impl Ui {
    /// Verification off (as in most end-to-end tests).
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// With the template's verification after the agent's edits, or without.
    pub async fn start_with(verify: bool) -> Self {
        Self::scripted(SCRIPT, verify).await
    }

    /// With another script for the model.
    pub async fn scripted(script: &str, verify: bool) -> Self {
        let model = MockModel::start(Script::from_json(script).unwrap())
            .await
            .unwrap();
        let mut config = config_for_model(&model.base_url());
        config.coding_agent.verify = verify;
        config.providers.push(ProviderConfig {
            id: "offline".into(),
            kind: draftsmith_service::config::ProviderKind::OpenAi,
            base_url: "http://127.0.0.1:9/v1".into(),
            api_key_env: Some("DRAFTSMITH_UI_TEST_KEY_THAT_IS_NEVER_SET".into()),
            models: vec!["big".into()],
        });
        let mut server = TestServer::start_with(StoreKind::Sqlite, config).await;
        server.model = Some(model);
        let browser = Browser::start().await;
        Self { server, browser }
    }

    /// Opens the UI at its sign-in form.
    pub async fn open(&self) {
        open_browser(&self.browser, &self.server.base_url).await;
    }

    /// Opens the UI and signs in with the admin token.
    pub async fn sign_in(&self) {
        self.sign_in_at(&self.server.base_url).await;
    }

    /// The same through another address of the server (e.g. a proxy).
    pub async fn sign_in_at(&self, base_url: &str) {
        sign_in_browser(&self.browser, base_url).await;
    }

    /// Creates an app from `template` through the form; returns its id once the builder shows.
    pub async fn create_app(&self, name: &str, template: &str) -> String {
        let b = &self.browser;
        b.type_into("#app-name", name).await;
        b.wait_for(
            "templates",
            "return [...document.querySelectorAll('#app-template option')].some(o => o.value === arguments[0])",
            json!([template]),
        )
        .await;
        b.js(
            "const s = document.querySelector('#app-template'); s.value = arguments[0]; s.dispatchEvent(new Event('change'))",
            json!([template]),
        )
        .await;
        b.click("#create-app").await;
        b.wait_css("body[data-view=builder] #composer").await;
        self.wait_idle().await;
        let hash = b.js("return location.hash", json!([])).await;
        hash.as_str()
            .unwrap()
            .trim_start_matches("#/apps/")
            .to_owned()
    }

    /// Types a prompt and sends it with the Send button.
    pub async fn send(&self, prompt: &str) {
        self.browser.type_into("#prompt", prompt).await;
        self.browser.click("#send").await;
    }

    /// Waits for the builder to have loaded its panels (the model picker is filled).
    pub async fn wait_idle(&self) {
        self.browser
            .wait_for(
                "the builder to load",
                "return document.querySelectorAll('#model option').length > 1 && document.querySelector('#draft-revision')",
                json!([]),
            )
            .await;
    }

    /// Waits until the run shown has `status`.
    pub async fn wait_status(&self, status: &str) {
        self.browser
            .wait_css(&format!("#run-status[data-status={status}]"))
            .await;
    }

    /// The text of every assistant message, in order.
    pub async fn assistant_texts(&self) -> Vec<String> {
        let v = self
            .browser
            .js(
                "return [...document.querySelectorAll('.msg.assistant .md')].map(e => [...e.children].map(c => c.textContent).join(' '))",
                json!([]),
            )
            .await;
        serde_json::from_value(v).unwrap()
    }

    /// The app's runs through the API, newest first.
    pub async fn runs(&self, app_id: &str) -> Vec<Run> {
        let list: RunList = self
            .server
            .admin()
            .get(&format!("/admin/apps/{app_id}/coding-agent/runs"), 200)
            .await;
        list.runs
    }

    /// Fails on uncaught exceptions or errors logged in the page (HTTP error statuses the
    /// UI shows itself are not), then closes the browser.
    pub async fn finish(self) {
        let errors: Vec<String> = self
            .browser
            .console_errors()
            .await
            .into_iter()
            .filter(|e| !e.contains("Failed to load resource"))
            .collect();
        assert!(errors.is_empty(), "browser console errors: {errors:#?}");
        assert!(self.server.model().violations().is_empty());
        self.browser.quit().await;
    }
}

/// The whole text of the slow scenario's answer, as the two turns render.
pub const SLOW_ANSWER: &str = "Working on it slowly so that you can stop me, queue more prompts, or reload the page in the middle of this answer. Now finishing the second part of the work, still slowly, one word at a time until the end.";

/// Opens the UI in `b` at `base_url`, at its sign-in form.
pub async fn open_browser(b: &Browser, base_url: &str) {
    b.goto(&format!("{base_url}/")).await;
    b.wait_css("#token").await;
}

/// Opens the UI in `b` at `base_url` and signs in with the admin token.
pub async fn sign_in_browser(b: &Browser, base_url: &str) {
    open_browser(b, base_url).await;
    b.type_into("#token", ADMIN_TOKEN).await;
    b.click("#signin-submit").await;
    b.wait_css("body[data-view=apps] #new-app").await;
}
