//! `draftsmith publish`: build a release of an app through the API and show its progress
//! (what is built, the time spent while the build runs, then where it is live). A failed
//! build prints its output and exits 1; nothing is published then.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use draftsmith_core::api::App;
use draftsmith_core::publish::{CreateRelease, Publication, Release};

use crate::follow::{error_text, resolve_app};

/// What the user asked for.
pub struct PublishRequest {
    pub app: String,
    pub checkpoint: Option<String>,
    pub promote: bool,
}

pub async fn publish(base: &str, token: &str, request: PublishRequest) -> anyhow::Result<i32> {
    let base = base.trim_end_matches('/');
    let http = reqwest::Client::new();
    let id = resolve_app(&http, base, token, &request.app).await?;
    let app: App = get(&http, base, token, &format!("/admin/apps/{id}")).await?;
    let what = match &request.checkpoint {
        Some(c) => format!("checkpoint {c}"),
        None => format!("draft revision {}", app.draft_revision),
    };
    eprintln!(
        "publishing {} ({what}, template {})",
        app.slug, app.template
    );
    let body = CreateRelease {
        checkpoint_id: request.checkpoint,
        promote: Some(request.promote),
    };
    let post = http
        .post(format!("{base}/admin/apps/{id}/releases"))
        .bearer_auth(token)
        .json(&body)
        .send();
    let response = with_progress(post)
        .await
        .with_context(|| format!("reaching {base}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if let Some(output) = body["error"]["details"]["output"].as_str() {
            eprintln!("{}", output.trim_end());
        }
        let code = body["error"]["code"].as_str().unwrap_or("HTTP_ERROR");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        eprintln!("{status} {code}: {message}");
        return Ok(1);
    }
    let release: Release = response.json().await?;
    let publication: Publication =
        get(&http, base, token, &format!("/admin/apps/{id}/publication")).await?;
    println!(
        "release #{} · revision {} · {} files, {} bytes",
        release.number, release.revision, release.file_count, release.size
    );
    if release.live {
        println!("live at {base}{}", publication.path);
        if let Some(url) = publication.domain_url {
            println!("and at {url}");
        }
    } else {
        println!(
            "not live; make it live with POST /admin/apps/{id}/releases/{}/promote",
            release.id
        );
    }
    Ok(0)
}

/// Awaits `future`, showing the time spent building meanwhile (a line a second on a
/// terminal, a dot every five seconds otherwise).
async fn with_progress<T>(future: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    tokio::pin!(future);
    let mut tick = tokio::time::interval(Duration::from_secs(if tty { 1 } else { 5 }));
    tick.tick().await;
    loop {
        tokio::select! {
            out = &mut future => {
                if tty {
                    eprint!("\r\x1b[2K");
                } else {
                    eprintln!();
                }
                eprintln!("built in {:.1} s", started.elapsed().as_secs_f64());
                return out;
            }
            _ = tick.tick() => {
                let mut err = std::io::stderr();
                if tty {
                    let _ = write!(err, "\r\x1b[2Kbuilding… {} s", started.elapsed().as_secs());
                } else {
                    let _ = write!(err, ".");
                }
                let _ = err.flush();
            }
        }
    }
}

async fn get<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
) -> anyhow::Result<T> {
    let response = http
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("{}", error_text(response).await);
    }
    Ok(response.json().await?)
}
