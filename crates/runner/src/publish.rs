//! Publishing: a manifest built into a release. The build runs in a sandbox of its own with
//! the template's build command (confined like verification, dependencies linked from the
//! shared cache); its output, or for a template without a build the app's own files, is
//! stored as content-addressed blobs with precompressed forms, and recorded as one
//! immutable release.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use draftsmith_core::api::App;
use draftsmith_core::publish::{Release, ReleaseFile};
use draftsmith_core::{BlobHash, UserId};
use draftsmith_sandbox::{ExecRequest, SandboxController, SandboxError, SandboxId};
use draftsmith_store::{Encoded, Manifest, NewRelease, Store, StoreError, StoredReleaseFile};

use crate::sandbox::StoreBlobs;

/// Longest a release build may run.
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);
/// Output of the build kept in the release (its tail).
const LOG_BYTES: usize = 8 * 1024;
/// The most a release may hold, uncompressed.
const MAX_RELEASE_BYTES: u64 = 256 * 1024 * 1024;
/// Files smaller than this are served as they are.
const MIN_COMPRESS_BYTES: usize = 256;

/// Why a release was not made; nothing was published for any of these.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The build command failed; its output's tail says why.
    #[error("the build failed ({command} exited with {exit})")]
    BuildFailed {
        /// The command.
        command: String,
        /// Its exit status, as text.
        exit: String,
        /// The tail of its output.
        output: String,
    },
    /// The sandbox could not build.
    #[error("the build sandbox failed: {0}")]
    Sandbox(#[from] SandboxError),
    /// The app's template is unknown to this binary.
    #[error("unknown template {0:?}")]
    Template(String),
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to publish and how.
pub struct PublishRequest<'a> {
    /// The app.
    pub app: &'a App,
    /// The manifest to build (a checkpoint's or the current draft's).
    pub manifest: Manifest,
    /// The checkpoint it came from, if one was named.
    pub checkpoint_id: Option<String>,
    /// Who publishes.
    pub by: UserId,
    /// Whether the release goes live at once.
    pub promote: bool,
}

/// Builds and records a release.
pub async fn publish(
    store: &Arc<dyn Store>,
    controller: &Arc<dyn SandboxController>,
    request: PublishRequest<'_>,
) -> Result<Release, PublishError> {
    let template = draftsmith_templates::find(&request.app.template)
        .ok_or_else(|| PublishError::Template(request.app.template.clone()))?;
    let (site, build_log) = match template.publish {
        Some(build) => built_site(store, controller, &request, build).await?,
        None => own_files(store, &request.manifest).await?,
    };
    let files = tokio::task::spawn_blocking(move || site.into_iter().map(prepare).collect())
        .await
        .map_err(|e| PublishError::Sandbox(SandboxError::Process(e.to_string())))?;
    let files: Vec<Prepared> = files;
    let blobs: Vec<(&BlobHash, &[u8])> = files
        .iter()
        .flat_map(|f| f.blobs.iter().map(|(h, b)| (h, b.as_slice())))
        .collect();
    store.blobs().put_many(&blobs).await?;
    let release = store
        .create_release(NewRelease {
            app: request.app.id,
            revision: request.manifest.revision,
            checkpoint_id: request.checkpoint_id,
            build_log,
            files: files.into_iter().map(|f| f.stored).collect(),
            by: request.by,
            promote: request.promote,
        })
        .await?;
    Ok(release)
}

/// Runs the template's build in a sandbox of its own and reads its output back; the
/// sandbox is stopped whatever happens.
async fn built_site(
    store: &Arc<dyn Store>,
    controller: &Arc<dyn SandboxController>,
    request: &PublishRequest<'_>,
    build: draftsmith_templates::Build,
) -> Result<(Vec<(String, Vec<u8>)>, String), PublishError> {
    let id = SandboxId::parse(&format!("release-{}", uuid::Uuid::new_v4().simple()))?;
    let result = build_in(store, controller, request, build, &id).await;
    if let Err(err) = controller.stop(&id).await {
        tracing::warn!(sandbox = %id, error = %err, "stopping a release build's sandbox");
    }
    result
}

async fn build_in(
    store: &Arc<dyn Store>,
    controller: &Arc<dyn SandboxController>,
    request: &PublishRequest<'_>,
    build: draftsmith_templates::Build,
    id: &SandboxId,
) -> Result<(Vec<(String, Vec<u8>)>, String), PublishError> {
    controller
        .create(id, &request.app.template, BUILD_TIMEOUT * 2)
        .await?;
    controller
        .refresh(id, &request.manifest.files, &StoreBlobs(store.clone()))
        .await?;
    let has_lockfile = request
        .manifest
        .files
        .iter()
        .any(|f| f.path == "package-lock.json");
    if has_lockfile {
        controller.prepare_dependencies(id).await?;
    }
    let exec = ExecRequest {
        command: build.command.to_owned(),
        timeout: BUILD_TIMEOUT,
        max_output_bytes: LOG_BYTES,
        env: vec![("CI".into(), "1".into())],
    };
    let output = controller
        .exec(id, exec, tokio_util::sync::CancellationToken::new())
        .await?;
    if output.exit_code != Some(0) || output.timed_out {
        let exit = match (output.timed_out, output.exit_code) {
            (true, _) => format!("a timeout after {} s", BUILD_TIMEOUT.as_secs()),
            (false, Some(code)) => code.to_string(),
            (false, None) => "a signal".into(),
        };
        return Err(PublishError::BuildFailed {
            command: build.command.to_owned(),
            exit,
            output: output.output,
        });
    }
    let site = controller
        .read_output(id, build.output, MAX_RELEASE_BYTES)
        .await?;
    Ok((site, output.output))
}

/// A template without a build publishes the app's files as they are, less hidden ones
/// (`.opencode/`, `.gitignore`): a site serves what a page needs.
async fn own_files(
    store: &Arc<dyn Store>,
    manifest: &Manifest,
) -> Result<(Vec<(String, Vec<u8>)>, String), PublishError> {
    let mut site = Vec::new();
    for file in &manifest.files {
        if file.path.split('/').any(|part| part.starts_with('.')) {
            continue;
        }
        site.push((file.path.clone(), store.blob(&file.sha256).await?));
    }
    let log = format!("published {} files as they are (no build step)", site.len());
    Ok((site, log))
}

/// A file ready to store: its row and every blob it needs.
struct Prepared {
    stored: StoredReleaseFile,
    blobs: Vec<(BlobHash, Vec<u8>)>,
}

fn prepare((path, bytes): (String, Vec<u8>)) -> Prepared {
    let content_type = content_type(&path);
    let sha256 = BlobHash::of(&bytes);
    let mut blobs = Vec::new();
    let (mut gzip, mut brotli) = (None, None);
    if compressible(&content_type) && bytes.len() >= MIN_COMPRESS_BYTES {
        for (encoded, slot) in [
            (gzip_bytes(&bytes), &mut gzip),
            (brotli_bytes(&bytes), &mut brotli),
        ] {
            // Only when it saves at least a tenth; otherwise the plain bytes are served.
            if let Some(encoded) = encoded.filter(|e| e.len() * 10 < bytes.len() * 9) {
                let hash = BlobHash::of(&encoded);
                *slot = Some(Encoded {
                    hash: hash.clone(),
                    size: encoded.len() as i64,
                });
                blobs.push((hash, encoded));
            }
        }
    }
    let stored = StoredReleaseFile {
        file: ReleaseFile {
            path,
            size: bytes.len() as i64,
            sha256: sha256.clone(),
            content_type,
        },
        gzip,
        brotli,
    };
    blobs.push((sha256, bytes));
    Prepared { stored, blobs }
}

/// The `Content-Type` a published file is served with (text in UTF-8).
pub fn content_type(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let text = mime.type_() == mime_guess::mime::TEXT
        || matches!(mime.subtype().as_str(), "javascript" | "json" | "xml");
    if text {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_owned()
    }
}

fn compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default();
    essence.starts_with("text/")
        || matches!(
            essence,
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "application/wasm"
                | "application/manifest+json"
                | "image/svg+xml"
        )
}

fn gzip_bytes(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

fn brotli_bytes(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 10,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Read;

    use super::*;

    #[test]
    fn text_is_precompressed_and_round_trips() {
        let js = "export const answer = 42;\n".repeat(200).into_bytes();
        let prepared = prepare(("assets/index-3fA9bC1d.js".into(), js.clone()));
        assert_eq!(
            prepared.stored.file.content_type,
            "text/javascript; charset=utf-8"
        );
        let gzip = prepared.stored.gzip.clone().unwrap();
        let gz = &prepared
            .blobs
            .iter()
            .find(|(h, _)| *h == gzip.hash)
            .unwrap()
            .1;
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, js);
        let br = prepared.stored.brotli.clone().unwrap();
        let br = &prepared
            .blobs
            .iter()
            .find(|(h, _)| *h == br.hash)
            .unwrap()
            .1;
        let mut plain = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut plain).unwrap();
        assert_eq!(plain, js);
        assert_eq!(prepared.blobs.len(), 3);
    }

    #[test]
    fn images_and_tiny_files_stay_plain() {
        let png = prepare(("logo.png".into(), vec![7u8; 4096]));
        assert_eq!(png.stored.file.content_type, "image/png");
        assert!(png.stored.gzip.is_none() && png.stored.brotli.is_none());
        let tiny = prepare(("a.css".into(), b"p{}".to_vec()));
        assert!(tiny.stored.gzip.is_none());
        assert_eq!(tiny.blobs.len(), 1);
    }
}
