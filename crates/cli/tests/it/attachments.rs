//! Attachments: uploads (raw and multipart, size and type limits, owner only) and files
//! attached to a prompt reaching the scripted model through a real run, recorded with the
//! chat message, and written into the draft on request.

use base64::Engine as _;
use draftsmith_core::UploadId;
use draftsmith_core::api::{
    App, ChatMessage, ChatSessionDetail, ChatSessionList, Run, RunList, Upload,
};
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_testkit::client::assert_error;
use draftsmith_testkit::server::config_for_model;
use draftsmith_testkit::sse::collect;
use draftsmith_testkit::{ApiClient, StoreKind, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_stores;
use crate::runs::{new_app, start_run};

both_stores!(
    an_uploaded_png_reaches_an_openai_compatible_model_as_a_data_url,
    an_uploaded_png_reaches_an_anthropic_model_as_an_image_block,
    oversize_and_wrong_type_uploads_are_refused,
    a_model_without_vision_is_refused_before_anything_persists,
    another_users_upload_cannot_be_used_or_read,
    into_writes_the_exact_bytes_into_the_draft,
);

/// A valid 1×1 PNG (OpenCode decodes the images it is given).
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x50, 0x4a, 0x3b, 0xf3,
    0x1f, 0x00, 0x04, 0x56, 0x02, 0x54, 0xe9, 0xc7, 0x2e, 0x6d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

const ANSWER: &str =
    r#"{"scenarios": [{"name": "look", "turns": [{"steps": [{"text": "Nice mock-up."}]}]}]}"#;

/// A server whose `mock/other` model has vision (`mock/coder` has none; the
/// `mock-anthropic/claude` family has it by default).
pub async fn server_with_vision(
    kind: StoreKind,
    script: &str,
    max_upload_bytes: Option<usize>,
) -> TestServer {
    let model = MockModel::start(Script::from_json(script).unwrap())
        .await
        .unwrap();
    let mut config = config_for_model(&model.base_url());
    config.models.settings.insert(
        "mock/other".into(),
        draftsmith_engine::ModelSettings {
            vision: Some(true),
            ..Default::default()
        },
    );
    if let Some(max) = max_upload_bytes {
        config.uploads.max_bytes = max;
    }
    let mut server = TestServer::start_with(kind, config).await;
    server.model = Some(model);
    server
}

fn uploads(app: &App) -> String {
    format!("/admin/apps/{}/uploads", app.id)
}

/// POSTs `bytes` as the raw body typed `content_type`, expecting `status`.
pub async fn upload_raw(
    client: &ApiClient,
    app: &App,
    name: &str,
    content_type: &str,
    bytes: &[u8],
    status: u16,
) -> Value {
    let path = format!("{}?name={name}", uploads(app));
    let response = client
        .request(Method::POST, &path)
        .header("content-type", content_type)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    let response = draftsmith_testkit::client::expect(response, status, "POST", &path).await;
    response.json().await.unwrap()
}

/// POSTs `bytes` as the file field of a multipart form.
async fn upload_multipart(
    client: &ApiClient,
    app: &App,
    name: &str,
    content_type: &str,
    bytes: &[u8],
    status: u16,
) -> Value {
    let boundary = "draftsmith-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let path = uploads(app);
    let response = client
        .request(Method::POST, &path)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let response = draftsmith_testkit::client::expect(response, status, "POST", &path).await;
    response.json().await.unwrap()
}

pub fn as_upload(value: Value) -> Upload {
    serde_json::from_value(value).unwrap()
}

async fn finished(admin: &ApiClient, app: &App, run: &Run) -> Run {
    collect(admin, &run.stream_url, None).await;
    admin
        .get(
            &format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id),
            200,
        )
        .await
}

/// The run's chat session's messages, as `GET chat-sessions/{id}` returns them.
async fn chat_messages(admin: &ApiClient, app: &App, run: &Run) -> Vec<ChatMessage> {
    let detail: ChatSessionDetail = admin
        .get(
            &format!(
                "/admin/apps/{}/coding-agent/chat-sessions/{}",
                app.id, run.chat_session_id
            ),
            200,
        )
        .await;
    detail.messages
}

fn last_user_content(body: &Value) -> Vec<Value> {
    let messages = body["messages"].as_array().unwrap();
    let user = messages.iter().rev().find(|m| m["role"] == "user").unwrap();
    user["content"].as_array().unwrap().clone()
}

/// Uploads the PNG and a note, runs with both on `model`, and returns the model's request
/// and the chat's messages.
async fn run_with_attachments(server: &TestServer, model: &str) -> (Value, Vec<ChatMessage>) {
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let png = as_upload(upload_raw(&admin, &app, "mockup.png", "image/png", PNG, 201).await);
    assert_eq!(
        (png.media_type.as_str(), png.size, png.name.as_str()),
        ("image/png", PNG.len() as i64, "mockup.png")
    );
    let note = as_upload(
        upload_raw(
            &admin,
            &app,
            "notes.md",
            "text/markdown",
            b"Use a blue header.",
            201,
        )
        .await,
    );
    let run = start_run(
        &admin,
        &app,
        json!({"input": "Make it look like this.", "model_id": model,
               "attachments": [png.id, {"id": note.id}]}),
    )
    .await;
    let run = finished(&admin, &app, &run).await;
    assert_eq!(run.summary.as_deref(), Some("Nice mock-up."), "{run:?}");
    let messages = chat_messages(&admin, &app, &run).await;
    let prompt = &messages[0];
    let attached: Vec<(&str, &str)> = prompt
        .attachments
        .iter()
        .map(|a| (a.name.as_str(), a.media_type.as_str()))
        .collect();
    assert_eq!(
        attached,
        [("mockup.png", "image/png"), ("notes.md", "text/markdown")]
    );
    assert_eq!(prompt.attachments[0].upload_id, png.id);
    // The thumbnail route gives the uploader the exact bytes back.
    let response = admin
        .request(Method::GET, &format!("{}/{}", uploads(&app), png.id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.bytes().await.unwrap().as_ref(), PNG);
    let model = server.model();
    assert_eq!(model.violations(), Vec::<String>::new());
    let request = model.requests().pop().unwrap();
    (request.body, messages)
}

async fn an_uploaded_png_reaches_an_openai_compatible_model_as_a_data_url(kind: StoreKind) {
    let server = server_with_vision(kind, ANSWER, None).await;
    let (body, _) = run_with_attachments(&server, "mock/other").await;
    let content = last_user_content(&body);
    assert_eq!(content.len(), 2, "{content:?}");
    let text = content[0]["text"].as_str().unwrap();
    assert!(text.contains("Attached file `notes.md`") && text.contains("Use a blue header."));
    assert!(text.ends_with("Make it look like this."), "{text}");
    assert_eq!(content[1]["type"], "image_url");
    let url = content[1]["image_url"]["url"].as_str().unwrap();
    let data = url.strip_prefix("data:image/png;base64,").unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    assert_eq!(decoded, PNG);
}

async fn an_uploaded_png_reaches_an_anthropic_model_as_an_image_block(kind: StoreKind) {
    let server = server_with_vision(kind, ANSWER, None).await;
    let (body, _) = run_with_attachments(&server, "mock-anthropic/claude").await;
    let content = last_user_content(&body);
    let image = content.iter().find(|b| b["type"] == "image").unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(PNG);
    assert_eq!(
        image["source"],
        json!({"type": "base64", "media_type": "image/png", "data": encoded})
    );
    let texts: Vec<&str> = content
        .iter()
        .filter(|b| b["type"] == "text")
        .map(|b| b["text"].as_str().unwrap())
        .collect();
    assert!(texts[0].contains("Use a blue header."), "{texts:?}");
    assert_eq!(texts[1], "Make it look like this.");
}

async fn oversize_and_wrong_type_uploads_are_refused(kind: StoreKind) {
    let server = server_with_vision(kind, ANSWER, Some(1024)).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    // Exactly at the limit is fine.
    let fits = vec![b'a'; 1024];
    upload_raw(&admin, &app, "fits.txt", "text/plain", &fits, 201).await;
    // A type the configuration does not accept.
    let html = upload_raw(&admin, &app, "x.html", "text/html", b"<p>hi</p>", 415).await;
    let details = assert_error(&html, "VALIDATION_FAILED");
    assert_eq!(details["field"], "content-type");
    // A declared image whose bytes are not one (an SVG is no PNG).
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg'/>";
    let fake = upload_raw(&admin, &app, "x.png", "image/png", svg, 415).await;
    assert_error(&fake, "VALIDATION_FAILED");
    // Binary bytes declared as text.
    let binary = upload_raw(&admin, &app, "x.txt", "text/plain", &[0xff, 0xfe, 0], 415).await;
    assert_error(&binary, "VALIDATION_FAILED");
    // An empty image is no image; an empty text file is text.
    let empty = upload_raw(&admin, &app, "x.png", "image/png", b"", 415).await;
    assert_error(&empty, "VALIDATION_FAILED");
    upload_raw(&admin, &app, "x.txt", "text/plain", b"", 201).await;
    // The type of an image comes from its bytes, whatever was declared; a form works too.
    let sniffed = as_upload(
        upload_multipart(
            &admin,
            &app,
            "../../shot.png",
            "application/octet-stream",
            PNG,
            201,
        )
        .await,
    );
    assert_eq!(sniffed.media_type, "image/png");
    assert_eq!(sniffed.name, "shot.png");
    // Over the limit, raw and in a form, each on a client of its own: the server answers
    // before it has read such a body and closes the connection, which a client's pool may
    // not have noticed when it sends its next request on it.
    let big = vec![b'a'; 1025];
    let refused = upload_raw(&server.admin(), &app, "big.txt", "text/plain", &big, 413).await;
    let details = assert_error(&refused, "PAYLOAD_TOO_LARGE");
    assert_eq!(details["limit_bytes"], 1024);
    let huge = vec![b'a'; 200 * 1024];
    let own = server.admin();
    let refused = upload_multipart(&own, &app, "big.txt", "text/plain", &huge, 413).await;
    assert_error(&refused, "PAYLOAD_TOO_LARGE");
}

async fn a_model_without_vision_is_refused_before_anything_persists(kind: StoreKind) {
    let server = server_with_vision(kind, ANSWER, None).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let png = as_upload(upload_raw(&admin, &app, "m.png", "image/png", PNG, 201).await);
    let refused = admin
        .post::<_, Value>(
            &format!("/admin/apps/{}/coding-agent/runs", app.id),
            &json!({"input": "Copy this", "model_id": "mock/coder", "attachments": [png.id]}),
            400,
        )
        .await;
    let details = assert_error(&refused, "CODING_AGENT_ATTACHMENT_UNSUPPORTED");
    assert_eq!(details["field"], "attachments");
    let runs: RunList = admin
        .get(&format!("/admin/apps/{}/coding-agent/runs", app.id), 200)
        .await;
    assert!(runs.runs.is_empty(), "nothing was persisted");
    let sessions: ChatSessionList = admin
        .get(
            &format!("/admin/apps/{}/coding-agent/chat-sessions", app.id),
            200,
        )
        .await;
    assert!(sessions.sessions.is_empty(), "no chat session was started");
    // A text file is fine for the same model; an unknown id is not.
    let note = as_upload(upload_raw(&admin, &app, "n.txt", "text/plain", b"hi", 201).await);
    let unknown = admin
        .post::<_, Value>(
            &format!("/admin/apps/{}/coding-agent/runs", app.id),
            &json!({"input": "Read", "model_id": "mock/coder",
                    "attachments": [note.id, uuid::Uuid::new_v4()]}),
            404,
        )
        .await;
    assert_error(&unknown, "NOT_FOUND");
    let run = start_run(
        &admin,
        &app,
        json!({"input": "Read", "model_id": "mock/coder", "attachments": [note.id]}),
    )
    .await;
    finished(&admin, &app, &run).await;
}

async fn another_users_upload_cannot_be_used_or_read(kind: StoreKind) {
    let server = server_with_vision(kind, ANSWER, None).await;
    let admin = server.admin();
    let bob: Value = admin
        .post(
            "/admin/tokens",
            &json!({"user": "bob", "role": "builder"}),
            201,
        )
        .await;
    let bob = admin.with_token(bob["token"].as_str().unwrap());
    let admin_app = new_app(&admin, "static").await;
    let bob_app = new_app(&bob, "static").await;
    let mine = as_upload(upload_raw(&admin, &admin_app, "a.png", "image/png", PNG, 201).await);
    let his = as_upload(upload_raw(&bob, &bob_app, "b.png", "image/png", PNG, 201).await);
    assert_eq!(his.owner.0, "bob");
    // Bob cannot attach or read the admin's upload.
    refused_upload(&bob, &bob_app, &admin_app, &mine.id).await;
    // An admin sees Bob's app but still cannot use or read Bob's upload.
    refused_upload(&admin, &bob_app, &bob_app, &his.id).await;
    // Nor can an upload move to another app of the same owner.
    let other_app = new_app(&admin, "static").await;
    let body = json!({"input": "x", "model_id": "mock/other", "attachments": [mine.id]});
    admin
        .post::<_, Value>(
            &format!("/admin/apps/{}/coding-agent/runs", other_app.id),
            &body,
            404,
        )
        .await;
}

/// `client` can neither attach `upload` to a run on `run_app` nor read it from
/// `upload_app`: 404 both, as for an upload that does not exist.
async fn refused_upload(client: &ApiClient, run_app: &App, upload_app: &App, upload: &UploadId) {
    let body = json!({"input": "x", "model_id": "mock/other", "attachments": [upload]});
    let refused = client
        .post::<_, Value>(
            &format!("/admin/apps/{}/coding-agent/runs", run_app.id),
            &body,
            404,
        )
        .await;
    assert_error(&refused, "NOT_FOUND");
    let read = client
        .request(Method::GET, &format!("{}/{upload}", uploads(upload_app)))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 404);
}

async fn into_writes_the_exact_bytes_into_the_draft(kind: StoreKind) {
    let server = server_with_vision(kind, ANSWER, None).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let png = as_upload(upload_raw(&admin, &app, "m.png", "image/png", PNG, 201).await);
    // A path the draft policy refuses is refused before anything is persisted.
    let blocked = admin
        .post::<_, Value>(
            &format!("/admin/apps/{}/coding-agent/runs", app.id),
            &json!({"input": "x", "model_id": "mock/other",
                    "attachments": [{"id": png.id, "into": "../outside.png"}]}),
            400,
        )
        .await;
    let details = assert_error(&blocked, "CODING_AGENT_PATH_BLOCKED");
    assert_eq!(details["field"], "attachments[0].into");
    let run = start_run(
        &admin,
        &app,
        json!({"input": "Use this image as the hero.", "model_id": "mock/other",
               "attachments": [{"id": png.id, "into": "public/mockup.png"}]}),
    )
    .await;
    let run = finished(&admin, &app, &run).await;
    assert!(run.result_revision.is_some(), "{run:?}");
    let (bytes, _) = admin
        .get_bytes(&format!(
            "/admin/apps/{}/draft/files/public/mockup.png",
            app.id
        ))
        .await;
    assert_eq!(bytes, PNG);
    let messages = chat_messages(&admin, &app, &run).await;
    assert_eq!(
        messages[0].attachments[0].into.as_deref(),
        Some("public/mockup.png")
    );
}
