//! A real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`): a small typed client over reqwest, so the UI tests need no browser
//! download and no extra crate. Every wait polls the DOM against a deadline; nothing
//! sleeps to synchronise. The driver and the browser it starts run in their own process
//! group, killed by that id when the `Browser` is dropped, even when a test panics.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// How long a condition may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);
/// How long one script may run before the driver fails it.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(10);

/// WebDriver's key codes for `Browser::keys`.
pub mod key {
    /// Tab.
    pub const TAB: &str = "\u{E004}";
    /// Enter.
    pub const ENTER: &str = "\u{E007}";
    /// Shift (held for the next key).
    pub const SHIFT: &str = "\u{E008}";
}

/// One Chromium session.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: String,
    child: Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

fn find_tool(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.exists(),
        "{} is missing: the UI tests need Debian's chromium and chromium-driver; run scripts/setup \
         (or set {env})",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; screenshots go to
    /// `<workspace>/artifacts/ui/`.
    pub async fn start() -> Self {
        let chromium = find_tool("DRAFTSMITH_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = find_tool("DRAFTSMITH_CHROMEDRIVER", "/usr/bin/chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut command = Command::new(&chromedriver);
        command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().unwrap();
        let driver = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = match http.get(format!("{driver}/status")).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["value"]["ready"].as_bool())
                    .unwrap_or(false),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1440,900",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
            // A script stuck behind a frame's navigation fails in seconds, so a wait can
            // try it again, instead of using up the whole wait in one call.
            "timeouts": {"script": SCRIPT_TIMEOUT.as_millis() as u64},
        }}});
        let mut browser = Self {
            http,
            session: String::new(),
            driver,
            child,
            _profile: profile,
            shots: artifacts_dir(),
        };
        let created = browser.raw("POST", "/session", Some(caps)).await;
        browser.session = created["sessionId"].as_str().unwrap().to_owned();
        browser
    }

    async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        match self.try_raw(method, path, body).await {
            Ok(value) => value,
            Err(err) => panic!("{err}"),
        }
    }

    async fn try_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.driver);
        let request = match method {
            "POST" => self
                .http
                .post(&url)
                .json(&body.unwrap_or_else(|| json!({}))),
            "DELETE" => self.http.delete(&url),
            _ => self.http.get(&url),
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let value: Value = response.json().await.unwrap();
        if !status.is_success() {
            let error = &value["value"];
            return Err(format!(
                "WebDriver {method} {path}: {status} {}: {}",
                error["error"],
                error["message"]
                    .as_str()
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
            ));
        }
        Ok(value["value"].clone())
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.raw(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url}))).await;
    }

    /// Reloads the page.
    pub async fn refresh(&self) {
        self.cmd("POST", "/refresh", None).await;
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) and returns its value.
    pub async fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Runs an asynchronous `script` that ends by calling its last argument with a value.
    pub async fn js_async(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Polls `script` until it returns something truthy, and returns that. A call the
    /// driver fails (the page or frame was being replaced) counts as not yet.
    pub async fn wait_for(&self, what: &str, script: &str, args: Value) -> Value {
        self.poll(what, async || self.try_js(script, &args).await)
            .await
    }

    /// [`Self::wait_for`] inside the iframe matching `frame`, back on the page after. Each
    /// try finds the iframe anew, so one that the page replaces meanwhile (a re-render) is
    /// followed instead of failing the wait with "no such frame".
    pub async fn wait_in_frame(&self, frame: &str, what: &str, script: &str, args: Value) -> Value {
        let value = self
            .poll(what, async || {
                if !self.try_enter(frame).await? {
                    return Ok(Value::Null);
                }
                self.try_js(script, &args).await
            })
            .await;
        if let Err(err) = self.try_frame(Value::Null).await {
            panic!("{err}");
        }
        value
    }

    /// Calls `attempt` until it returns something truthy, and returns that; an error counts
    /// as not yet. Past [`WAIT`] it fails with a screenshot and the page's shown errors.
    async fn poll(
        &self,
        what: &str,
        mut attempt: impl AsyncFnMut() -> Result<Value, String>,
    ) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let (value, failed) = match attempt().await {
                Ok(value) => (value, None),
                Err(err) => (Value::Null, Some(err)),
            };
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                // The errors are the page's, whichever frame the wait was in.
                let _ = self.try_frame(Value::Null).await;
                self.screenshot(&format!("timeout-{}", slug(what))).await;
                let errors = self.text("#errors").await;
                let last = failed.unwrap_or_else(|| value.to_string());
                panic!(
                    "timed out waiting for {what} (last value {last}); errors shown: {errors:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn try_js(&self, script: &str, args: &Value) -> Result<Value, String> {
        let path = format!("/session/{}/execute/sync", self.session);
        let body = json!({"script": script, "args": args});
        self.try_raw("POST", &path, Some(body)).await
    }

    async fn try_frame(&self, id: Value) -> Result<Value, String> {
        let path = format!("/session/{}/frame", self.session);
        self.try_raw("POST", &path, Some(json!({"id": id}))).await
    }

    /// Switches from the page into the iframe matching `css`: false while there is none.
    async fn try_enter(&self, css: &str) -> Result<bool, String> {
        self.try_frame(Value::Null).await?;
        let index = self
            .try_js(
                "return [...document.querySelectorAll('iframe')].indexOf(document.querySelector(arguments[0]))",
                &json!([css]),
            )
            .await?;
        if index.as_i64().is_none_or(|i| i < 0) {
            return Ok(false);
        }
        self.try_frame(index).await?;
        Ok(true)
    }

    /// Waits until `css` matches an element, and returns how many match.
    pub async fn wait_css(&self, css: &str) -> u64 {
        self.wait_for(
            css,
            "return document.querySelectorAll(arguments[0]).length",
            json!([css]),
        )
        .await
        .as_u64()
        .unwrap_or(0)
    }

    /// The text of the first element matching `css` ("" when none does).
    pub async fn text(&self, css: &str) -> String {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    async fn element(&self, css: &str) -> String {
        self.wait_css(css).await;
        let found = self
            .cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        element_id(&found)
    }

    /// Clicks the first element matching `css` (a real pointer click).
    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        let path = format!("/session/{}/element/{id}/click", self.session);
        if let Err(err) = self.try_raw("POST", &path, None).await {
            self.screenshot(&format!("failed-click-{}", slug(css)))
                .await;
            panic!("clicking {css}: {err}");
        }
    }

    /// Types `text` into the element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Sends keys (see [`key`]) to whatever has the focus, as a keyboard would.
    pub async fn keys(&self, text: &str) {
        let mut actions = Vec::new();
        for c in text.chars() {
            actions.push(json!({"type": "keyDown", "value": c.to_string()}));
            actions.push(json!({"type": "keyUp", "value": c.to_string()}));
        }
        self.cmd(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )
        .await;
        self.cmd("DELETE", "/actions", None).await;
    }

    /// Deletes every cookie of the current page's site (a session that ended).
    pub async fn delete_cookies(&self) {
        self.cmd("DELETE", "/cookie", None).await;
    }

    /// Saves a PNG of the viewport as `artifacts/ui/{name}.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let data = self.cmd("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::create_dir_all(&self.shots).unwrap();
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The browser console's errors so far (for failing on uncaught exceptions).
    pub async fn console_errors(&self) -> Vec<String> {
        let logs = self
            .raw(
                "POST",
                &format!("/session/{}/se/log", self.session),
                Some(json!({"type": "browser"})),
            )
            .await;
        logs.as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["level"] == "SEVERE")
            .map(|l| l["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Ends the session (Chromium quits); `Drop` still kills the driver's process group.
    pub async fn quit(mut self) {
        if !self.session.is_empty() {
            let url = format!("{}/session/{}", self.driver, self.session);
            let _ = self.http.delete(url).send().await;
            self.session.clear();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver leads its own process group; Chromium and its helpers are in it.
        draftsmith_process::kill_group(self.child.id());
        let _ = self.child.wait();
    }
}

fn element_id(found: &Value) -> String {
    found
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(Value::as_str)
        .unwrap()
        .to_owned()
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(60)
        .collect()
}

/// `<workspace root>/artifacts/ui`.
pub fn artifacts_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .join("artifacts")
        .join("ui")
}
