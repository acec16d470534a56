//! A typed HTTP client for tests: every call names the status it expects and fails the
//! test with the response body when another one comes back.

use reqwest::{Method, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Talks to one server with one set of credentials.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl ApiClient {
    /// A client for `base` (e.g. `http://127.0.0.1:1234`), with a bearer token or none.
    pub fn new(base: &str, token: Option<&str>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            token: token.map(str::to_owned),
        }
    }

    /// The same server with other credentials.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request builder with the credentials applied, for cases the helpers don't cover.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        }
    }

    /// GET `path`, expecting `status`, decoding the JSON body.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, status: u16) -> T {
        let response = self.request(Method::GET, path).send().await.unwrap();
        json_body(expect(response, status, "GET", path).await).await
    }

    /// POST a JSON body, expecting `status`.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        status: u16,
    ) -> T {
        let response = self
            .request(Method::POST, path)
            .json(body)
            .send()
            .await
            .unwrap();
        json_body(expect(response, status, "POST", path).await).await
    }

    /// POST raw bytes as JSON (for malformed bodies), expecting `status`.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>, status: u16) -> Value {
        let response = self
            .request(Method::POST, path)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        json_body(expect(response, status, "POST", path).await).await
    }

    /// GET a file's raw bytes, expecting 200; returns them with the `x-draft-revision`.
    pub async fn get_bytes(&self, path: &str) -> (Vec<u8>, i64) {
        let response = self.request(Method::GET, path).send().await.unwrap();
        let response = expect(response, 200, "GET", path).await;
        let revision = response
            .headers()
            .get("x-draft-revision")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("x-draft-revision header");
        (response.bytes().await.unwrap().to_vec(), revision)
    }

    /// PUT raw bytes with an optional `If-Match`, expecting `status`.
    pub async fn put_bytes(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        if_match: Option<&str>,
        status: u16,
    ) -> Value {
        let mut builder = self.request(Method::PUT, path).body(body);
        if let Some(m) = if_match {
            builder = builder.header("if-match", m);
        }
        let response = builder.send().await.unwrap();
        json_body(expect(response, status, "PUT", path).await).await
    }

    /// DELETE with an optional `If-Match`, expecting `status`.
    pub async fn delete(&self, path: &str, if_match: Option<&str>, status: u16) -> Value {
        let mut builder = self.request(Method::DELETE, path);
        if let Some(m) = if_match {
            builder = builder.header("if-match", m);
        }
        let response = builder.send().await.unwrap();
        json_body(expect(response, status, "DELETE", path).await).await
    }
}

/// Fails the test unless `response` has `status`.
pub async fn expect(response: Response, status: u16, method: &str, path: &str) -> Response {
    if response.status() == StatusCode::from_u16(status).unwrap() {
        return response;
    }
    let got = response.status();
    let body = response.text().await.unwrap_or_default();
    panic!("{method} {path}: expected {status}, got {got}: {body}");
}

async fn json_body<T: DeserializeOwned>(response: Response) -> T {
    let bytes = response.bytes().await.unwrap();
    let bytes = if bytes.is_empty() {
        b"null".as_slice().into()
    } else {
        bytes
    };
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "undecodable body ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// Asserts that `body` is the error envelope with `code`, and returns its details.
pub fn assert_error(body: &Value, code: &str) -> Value {
    let error = body
        .get("error")
        .unwrap_or_else(|| panic!("not an error envelope: {body}"));
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    error["details"].clone()
}
