//! Publishing: releases built from the draft or a checkpoint, served at `/p/{slug}/` with
//! caching, compression, ranges and an SPA fallback; promote, rollback and unpublish as
//! pointer swaps; private releases; ownership; a failing build publishes nothing.

use std::io::Read;

use draftsmith_core::api::{App, TokenCreated};
use draftsmith_core::publish::{Publication, Release, ReleaseList};
use draftsmith_testkit::client::assert_error;
use draftsmith_testkit::{ApiClient, StoreKind, TestServer};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::both_stores;
use crate::runs::new_app;

both_stores!(
    releases_are_served_promoted_rolled_back_and_unpublished,
    private_releases_and_other_users_are_refused,
    a_vite_app_is_built_and_served_on_its_own_domain
);

/// 200 KB of CSS under a bundler-style hashed name (large enough to be sent from a sealed
/// memory file once cached).
fn big_css() -> Vec<u8> {
    (0..4000)
        .map(|i| format!(".rule-{i} {{ color: #{:06x}; margin: {i}px; }}\n", i * 997))
        .collect::<String>()
        .into_bytes()
}

async fn put(admin: &ApiClient, app: &App, path: &str, bytes: Vec<u8>) {
    let (_, revision) = admin
        .get_bytes(&format!("/admin/apps/{}/draft/files/index.html", app.id))
        .await;
    admin
        .put_bytes(
            &format!("/admin/apps/{}/draft/files/{path}", app.id),
            bytes,
            Some(&revision.to_string()),
            200,
        )
        .await;
}

pub async fn publish(admin: &ApiClient, app: &App, body: Value) -> Release {
    admin
        .post(&format!("/admin/apps/{}/releases", app.id), &body, 201)
        .await
}

async fn fetch(base: &str, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    send(reqwest::Method::GET, base, path, headers).await
}

async fn send(
    method: reqwest::Method,
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .request(method, format!("{base}{path}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.unwrap()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

async fn releases_are_served_promoted_rolled_back_and_unpublished(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let admin = server.admin();
    let base = server.base_url.clone();
    let app = new_app(&admin, "static").await;
    let css = big_css();
    put(&admin, &app, "assets/site-Ab12Cd34.css", css.clone()).await;
    let (index_v1, _) = admin
        .get_bytes(&format!("/admin/apps/{}/draft/files/index.html", app.id))
        .await;

    let first = publish(&admin, &app, json!({})).await;
    assert_eq!((first.number, first.live), (1, true));
    let site = format!("/p/{}/", app.slug);
    // The release holds the app's files, not its hidden ones.
    let detail: Release = admin
        .get(
            &format!("/admin/apps/{}/releases/{}", app.id, first.id),
            200,
        )
        .await;
    let paths: Vec<String> = detail.files.unwrap().into_iter().map(|f| f.path).collect();
    assert!(paths.contains(&"index.html".to_owned()), "{paths:?}");
    assert!(paths.iter().all(|p| !p.starts_with('.')), "{paths:?}");

    let page = fetch(&base, &site, &[]).await;
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&h, "cache-control"), "public, no-cache");
    assert!(header(&h, "content-security-policy").starts_with("sandbox allow-scripts"));
    assert_eq!(page.bytes().await.unwrap(), index_v1);
    // Revalidation: the ETag gives a 304 with no body.
    let etag = header(&h, "etag").to_owned();
    let again = fetch(&base, &site, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());
    // HEAD answers the same head without the body; writes are refused in the envelope.
    let head = send(reqwest::Method::HEAD, &base, &site, &[]).await;
    assert_eq!(head.status(), 200);
    assert_eq!(header(head.headers(), "etag"), etag);
    assert_eq!(
        header(head.headers(), "content-length"),
        index_v1.len().to_string()
    );
    assert!(head.bytes().await.unwrap().is_empty());
    let post = send(reqwest::Method::POST, &base, &site, &[]).await;
    assert_eq!(post.status(), 405);
    assert_error(&post.json().await.unwrap(), "METHOD_NOT_ALLOWED");
    // A client-side route falls back to index.html; a missing file is a 404 page.
    let route = fetch(&base, &format!("{site}settings/profile"), &[]).await;
    assert_eq!(route.status(), 200);
    assert_eq!(route.bytes().await.unwrap(), index_v1);
    let missing = fetch(&base, &format!("{site}nope.png"), &[]).await;
    assert_eq!(missing.status(), 404);
    assert!(header(missing.headers(), "content-type").starts_with("text/html"));
    assert_eq!(
        fetch(&base, &format!("/p/{}", app.slug), &[])
            .await
            .status(),
        308
    );

    // A hashed asset: immutable, precompressed by Accept-Encoding, ranges on the identity bytes.
    let asset = format!("{site}assets/site-Ab12Cd34.css");
    let plain = fetch(&base, &asset, &[]).await;
    assert_eq!(
        header(plain.headers(), "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        header(plain.headers(), "content-type"),
        "text/css; charset=utf-8"
    );
    assert_eq!(plain.bytes().await.unwrap(), css);
    let br = fetch(&base, &asset, &[("accept-encoding", "gzip, br")]).await;
    assert_eq!(header(br.headers(), "content-encoding"), "br");
    assert_eq!(header(br.headers(), "vary"), "Accept-Encoding");
    let compressed = br.bytes().await.unwrap();
    assert!(compressed.len() < css.len() / 4);
    let mut decoded = Vec::new();
    brotli::BrotliDecompress(&mut &compressed[..], &mut decoded).unwrap();
    assert_eq!(decoded, css);
    let gz = fetch(&base, &asset, &[("accept-encoding", "gzip, br;q=0")]).await;
    assert_eq!(header(gz.headers(), "content-encoding"), "gzip");
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&gz.bytes().await.unwrap()[..])
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, css);
    let part = fetch(&base, &asset, &[("range", "bytes=10-19")]).await;
    assert_eq!(part.status(), 206);
    assert_eq!(
        header(part.headers(), "content-range"),
        format!("bytes 10-19/{}", css.len())
    );
    assert_eq!(part.bytes().await.unwrap(), css[10..20]);
    let far = fetch(&base, &asset, &[("range", "bytes=150000-150099")]).await;
    assert_eq!(far.status(), 206);
    assert_eq!(far.bytes().await.unwrap(), css[150_000..150_100]);
    let beyond = fetch(&base, &asset, &[("range", "bytes=999999-")]).await;
    assert_eq!(beyond.status(), 416);

    // A second release of changed content; equal files are stored once.
    let stats_before = server.store.stats().await.unwrap();
    let index_v2 = b"<!doctype html><title>v2</title><p>second release</p>\n".to_vec();
    put(&admin, &app, "index.html", index_v2.clone()).await;
    let second = publish(&admin, &app, json!({})).await;
    assert_eq!((second.number, second.live), (2, true));
    let stats_after = server.store.stats().await.unwrap();
    assert_eq!(
        stats_after.blobs,
        stats_before.blobs + 1,
        "only index.html is new"
    );
    assert_eq!(
        fetch(&base, &site, &[]).await.bytes().await.unwrap(),
        index_v2
    );

    // Rollback: the earlier bytes exactly, at once.
    let live: Publication = admin
        .post(
            &format!("/admin/apps/{}/releases/{}/promote", app.id, first.id),
            &json!({}),
            200,
        )
        .await;
    assert_eq!(live.release_id.as_deref(), Some(first.id.as_str()));
    assert_eq!(live.path, site);
    assert_eq!(
        fetch(&base, &site, &[]).await.bytes().await.unwrap(),
        index_v1
    );
    let list: ReleaseList = admin
        .get(&format!("/admin/apps/{}/releases", app.id), 200)
        .await;
    let numbers: Vec<(i64, bool)> = list.releases.iter().map(|r| (r.number, r.live)).collect();
    assert_eq!(numbers, [(2, false), (1, true)]);

    // Unpublish: 404, the releases stay, and one can go live again.
    let offline: Publication = serde_json::from_value(
        admin
            .delete(&format!("/admin/apps/{}/publication", app.id), None, 200)
            .await,
    )
    .unwrap();
    assert_eq!(offline.release_id, None);
    assert_eq!(fetch(&base, &site, &[]).await.status(), 404);
    let list: ReleaseList = admin
        .get(&format!("/admin/apps/{}/releases", app.id), 200)
        .await;
    assert_eq!(list.releases.len(), 2);
    admin
        .post::<_, Value>(
            &format!("/admin/apps/{}/releases/{}/promote", app.id, second.id),
            &json!({}),
            200,
        )
        .await;
    assert_eq!(
        fetch(&base, &site, &[]).await.bytes().await.unwrap(),
        index_v2
    );

    // A release kept offline until promoted.
    let staged = publish(&admin, &app, json!({"promote": false})).await;
    assert!(!staged.live);
    assert_eq!(
        fetch(&base, &site, &[]).await.bytes().await.unwrap(),
        index_v2
    );
    let bad = admin
        .post::<_, Value>(
            &format!("/admin/apps/{}/releases", app.id),
            &json!({"checkpoint_id": "no-such-checkpoint"}),
            400,
        )
        .await;
    assert_error(&bad, "VALIDATION_FAILED");
    server.shutdown().await;
}

async fn private_releases_and_other_users_are_refused(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let admin = server.admin();
    let base = server.base_url.clone();
    let app = new_app(&admin, "static").await;
    let release = publish(&admin, &app, json!({})).await;
    let site = format!("/p/{}/", app.slug);
    let key = "k3y-for-friends-only_2026";
    let bad = admin
        .request(
            reqwest::Method::PUT,
            &format!("/admin/apps/{}/publication", app.id),
        )
        .json(&json!({"visibility": "private", "access_key": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let set = admin
        .request(
            reqwest::Method::PUT,
            &format!("/admin/apps/{}/publication", app.id),
        )
        .json(&json!({"visibility": "private", "access_key": key}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let refused = fetch(&base, &site, &[]).await;
    assert_eq!(refused.status(), 401);
    assert!(header(refused.headers(), "www-authenticate").starts_with("Basic"));
    let wrong = fetch(&base, &format!("{site}~not-the-key-at-all-x/"), &[]).await;
    assert_eq!(wrong.status(), 401);
    let by_path = fetch(&base, &format!("{site}~{key}/"), &[]).await;
    assert_eq!(by_path.status(), 200);
    assert!(header(by_path.headers(), "cache-control").starts_with("private"));
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("visitor:{key}"))
    );
    assert_eq!(
        fetch(&base, &site, &[("authorization", &basic)])
            .await
            .status(),
        200
    );

    // Another user can neither publish, promote, list, read nor unpublish this app.
    let bob: TokenCreated = admin
        .post(
            "/admin/tokens",
            &json!({"user": "bob", "role": "builder"}),
            201,
        )
        .await;
    let bob = admin.with_token(&bob.token);
    let releases = format!("/admin/apps/{}/releases", app.id);
    assert_error(
        &bob.post::<_, Value>(&releases, &json!({}), 404).await,
        "NOT_FOUND",
    );
    bob.get::<Value>(&releases, 404).await;
    bob.get::<Value>(&format!("{releases}/{}", release.id), 404)
        .await;
    bob.post::<_, Value>(
        &format!("{releases}/{}/promote", release.id),
        &json!({}),
        404,
    )
    .await;
    bob.delete(&format!("/admin/apps/{}/publication", app.id), None, 404)
        .await;
    let bobs_app = new_app(&bob, "static").await;
    // Nor promote this app's release through an app of his own.
    bob.post::<_, Value>(
        &format!(
            "/admin/apps/{}/releases/{}/promote",
            bobs_app.id, release.id
        ),
        &json!({}),
        404,
    )
    .await;
    assert_eq!(fetch(&base, &site, &[]).await.status(), 401);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_build_publishes_nothing() {
    let server = TestServer::start(StoreKind::Sqlite).await;
    let admin = server.admin();
    let app = new_app(&admin, "vite-react").await;
    put(
        &admin,
        &app,
        "src/App.jsx",
        b"export default function App() { return <div>; }\n".to_vec(),
    )
    .await;
    let refused = admin
        .post::<_, Value>(&format!("/admin/apps/{}/releases", app.id), &json!({}), 422)
        .await;
    let details = assert_error(&refused, "CODING_AGENT_VERIFICATION_FAILED");
    assert_eq!(details["command"], "npm run build");
    assert!(
        details["output"].as_str().unwrap().contains("App.jsx"),
        "{details:#}"
    );
    let list: ReleaseList = admin
        .get(&format!("/admin/apps/{}/releases", app.id), 200)
        .await;
    assert!(list.releases.is_empty());
    let page = fetch(&server.base_url, &format!("/p/{}/", app.slug), &[]).await;
    assert_eq!(page.status(), 404);
    // The build's sandbox is gone.
    let sandboxes = server.db.dir.path().join("sandboxes");
    let left: Vec<String> = std::fs::read_dir(&sandboxes)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("release-"))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    server.shutdown().await;
}

/// Waits until `base` serves `path` with `status` (and `body`, when given).
async fn served_within(base: &str, path: &str, status: u16, body: Option<&[u8]>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let response = fetch(base, path, &[]).await;
        let got = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        if got == status && body.is_none_or(|b| bytes == b) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{base}{path}: still {got} {:?}",
            String::from_utf8_lossy(&bytes)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_serves_the_same_release() {
    use draftsmith_testkit::{ADMIN_TOKEN, ServerProcess, TestDb};
    let db = TestDb::new(StoreKind::Postgres).await;
    let start = |name: &'static str| {
        let dir = db.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let dir = dir.to_string_lossy().into_owned();
        let db = &db;
        async move {
            ServerProcess::start_with_env(
                &crate::support::binary(),
                db,
                &[
                    ("DRAFTSMITH_ADMIN_TOKEN", ADMIN_TOKEN),
                    ("DRAFTSMITH_DATA_DIR", &dir),
                ],
            )
            .await
        }
    };
    let one = start("one").await;
    let two = start("two").await;
    let admin = one.admin();
    let app = new_app(&admin, "static").await;
    let site = format!("/p/{}/", app.slug);
    served_within(&two.base_url, &site, 404, None).await;
    publish(&admin, &app, json!({})).await;
    let (index, _) = admin
        .get_bytes(&format!("/admin/apps/{}/draft/files/index.html", app.id))
        .await;
    served_within(&two.base_url, &site, 200, Some(&index)).await;
    // A new release made live on one instance is what the other serves (within a second).
    let v2 = b"<!doctype html><p>from instance one</p>\n".to_vec();
    put(&admin, &app, "index.html", v2.clone()).await;
    publish(&admin, &app, json!({})).await;
    served_within(&two.base_url, &site, 200, Some(&v2)).await;
    two.admin()
        .delete(&format!("/admin/apps/{}/publication", app.id), None, 200)
        .await;
    served_within(&one.base_url, &site, 404, None).await;
    one.kill().await;
    two.kill().await;
}

async fn publish_cli(base: &str, args: &[&str]) -> (i32, String) {
    let args: Vec<&str> = std::iter::once("publish")
        .chain(args.iter().copied())
        .collect();
    crate::support::cli(base, &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_from_the_terminal_shows_progress_and_failures() {
    let server = TestServer::start(StoreKind::Sqlite).await;
    let admin = server.admin();
    let base = server.base_url.clone();
    let app = new_app(&admin, "static").await;
    let (code, text) = publish_cli(&base, &["--app", &app.slug]).await;
    assert_eq!(code, 0, "{text}");
    for expected in [
        format!(
            "publishing {} (draft revision 1, template static)",
            app.slug
        ),
        "built in".to_owned(),
        "release #1 · revision 1".to_owned(),
        format!("live at {base}/p/{}/", app.slug),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    assert_eq!(
        fetch(&base, &format!("/p/{}/", app.slug), &[])
            .await
            .status(),
        200
    );
    let (code, text) = publish_cli(&base, &["--app", &app.slug, "--no-promote"]).await;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("release #2") && text.contains("not live"),
        "{text}"
    );
    let (code, text) = publish_cli(&base, &["--app", "no-such-app"]).await;
    assert_ne!(code, 0);
    assert!(text.contains("no-such-app"), "{text}");
    // A failing build prints the build's output and exits 1.
    let vite = new_app(&admin, "vite-react").await;
    put(
        &admin,
        &vite,
        "src/App.jsx",
        b"export default () => <div>;\n".to_vec(),
    )
    .await;
    let (code, text) = publish_cli(&base, &["--app", &vite.slug]).await;
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("CODING_AGENT_VERIFICATION_FAILED"), "{text}");
    assert!(text.contains("App.jsx"), "{text}");
    server.shutdown().await;
}

async fn a_vite_app_is_built_and_served_on_its_own_domain(kind: StoreKind) {
    let mut config = draftsmith_service::Config::default();
    config.publish.apps_domain = "Apps.Example.TEST".into();
    let server = TestServer::start_with(kind, config).await;
    let admin = server.admin();
    let base = server.base_url.clone();
    let app = new_app(&admin, "vite-react").await;
    let release = publish(&admin, &app, json!({})).await;
    assert!(
        release.build_log.contains("built in"),
        "{}",
        release.build_log
    );
    let detail: Release = admin
        .get(
            &format!("/admin/apps/{}/releases/{}", app.id, release.id),
            200,
        )
        .await;
    let files = detail.files.unwrap();
    let script = files
        .iter()
        .find(|f| f.path.starts_with("assets/") && f.path.ends_with(".js"))
        .expect("a built script");
    assert_eq!(script.content_type, "text/javascript; charset=utf-8");
    // Only the build's output is published: no sources, no lockfile.
    assert!(
        files
            .iter()
            .all(|f| !f.path.starts_with("src/") && f.path != "package.json")
    );
    let publication: Publication = admin
        .get(&format!("/admin/apps/{}/publication", app.id), 200)
        .await;
    let domain = format!("{}.apps.example.test", app.slug);
    assert_eq!(publication.domain_url, Some(format!("https://{domain}/")));
    // The same release by its Host: a normal origin, so no sandbox CSP.
    let page = fetch(&base, "/", &[("host", &domain)]).await;
    assert_eq!(page.status(), 200);
    assert!(page.headers().get("content-security-policy").is_none());
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("./{}", script.path)), "{html}");
    let asset = fetch(&base, &format!("/{}", script.path), &[("host", &domain)]).await;
    assert_eq!(
        header(asset.headers(), "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(asset.bytes().await.unwrap().len() as i64, script.size);
    let on_origin = fetch(&base, &format!("/p/{}/{}", app.slug, script.path), &[]).await;
    assert_eq!(on_origin.status(), 200);
    let write = send(reqwest::Method::PUT, &base, "/", &[("host", &domain)]).await;
    assert_eq!(write.status(), 405);
    // Another host is the API as usual; an unknown app under the domain is a 404 page.
    let missing = fetch(&base, "/", &[("host", "nobody.apps.example.test")]).await;
    assert_eq!(missing.status(), 404);
    let api = fetch(&base, "/healthz", &[("host", "localhost")]).await;
    assert_eq!(api.status(), 200);
    server.shutdown().await;
}
