//! What published apps are served from: which release each slug serves (re-read from the
//! store at most once a second, so a promote on any instance takes effect everywhere within
//! that time, and at once on the instance that made it), each release's file table
//! (immutable, so kept, with the header values each file's answers carry made once), the
//! caching policy by file name, and the hot files' bytes in a cache bounded by size.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use bytes::Bytes;
use draftsmith_core::BlobHash;
use draftsmith_store::{PublicationRecord, Store, StoredReleaseFile};

use crate::edge::sealed;
use crate::error::ApiResult;

/// How long a slug's pointer is trusted before the store is asked again.
const POINTER_TTL: Duration = Duration::from_secs(1);
/// Release file tables kept.
const MAX_RELEASES: usize = 256;
/// Blobs larger than this are read from the store each time instead of filling the cache.
const MAX_CACHED_BLOB: usize = 8 * 1024 * 1024;

/// A live release as served: its publication and its files by path.
pub struct Site {
    /// Who may see it and which release it is.
    pub publication: PublicationRecord,
    /// The release's files by path.
    pub files: Files,
}

/// A release's file as served: what the store holds, and the header values every answer
/// of it carries, made when the release's table is loaded rather than per request.
pub struct ServedFile {
    /// The file, its encodings and their blobs.
    pub stored: StoredReleaseFile,
    /// `Content-Type`.
    pub content_type: HeaderValue,
    /// `Cache-Control` on a public site and on a private one.
    cache_control: [HeaderValue; 2],
    /// Strong `ETag`s (with their quotes) of the identity bytes, the gzip form and the
    /// brotli form.
    etags: [HeaderValue; 3],
}

impl ServedFile {
    fn new(stored: StoredReleaseFile) -> Self {
        let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
        let sha = &stored.file.sha256;
        Self {
            content_type: value(&stored.file.content_type),
            cache_control: [false, true]
                .map(|private| value(&cache_control(&stored.file.path, private))),
            etags: [
                value(&format!("\"{sha}\"")),
                value(&format!("\"{sha}-gzip\"")),
                value(&format!("\"{sha}-br\"")),
            ],
            stored,
        }
    }

    /// `Cache-Control` for this file on a public or a private site.
    pub fn cache_control(&self, private: bool) -> &HeaderValue {
        &self.cache_control[usize::from(private)]
    }

    /// The `ETag` of the answer in `coding` (`None`: the identity bytes).
    pub fn etag(&self, coding: Option<&str>) -> &HeaderValue {
        match coding {
            Some("gzip") => &self.etags[1],
            Some(_) => &self.etags[2],
            None => &self.etags[0],
        }
    }
}

/// Hashed asset names never change content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn cache_control(path: &str, private: bool) -> String {
    let scope = if private { "private" } else { "public" };
    if hashed_name(path) {
        IMMUTABLE.replacen("public", scope, 1)
    } else {
        format!("{scope}, no-cache")
    }
}

/// A bundler's content-hashed name, such as `index-BxK3c9aQ.js`: a final `-` or `.`
/// segment of 8+ word characters with a digit or an upper-case letter, before the extension.
fn hashed_name(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    if ext.is_empty() {
        return false;
    }
    let looks_hashed = |hash: &str| {
        hash.len() >= 8
            && hash.len() < stem.len()
            && hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && hash
                .bytes()
                .any(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    };
    let hash = stem.rsplit(['-', '.']).next().unwrap_or("");
    // Vite's `[name]-[hash]` hash is 8 base64url characters, which may hold a `-` itself.
    let vite = stem.len() > 9
        && stem.as_bytes()[stem.len() - 9] == b'-'
        && stem.is_char_boundary(stem.len() - 8)
        && looks_hashed(&stem[stem.len() - 8..].replace('-', "_"));
    looks_hashed(hash) || vite
}

/// A release's files by path.
type Files = Arc<HashMap<String, ServedFile>>;
/// When a slug was looked up, and what it served then.
type Pointer = (Instant, Option<Arc<Site>>);

/// The per-instance caches of published apps.
pub struct Sites {
    pointers: Mutex<HashMap<String, Pointer>>,
    releases: Mutex<lru::LruCache<String, Files>>,
    blobs: Mutex<BlobCache>,
}

struct BlobCache {
    entries: lru::LruCache<BlobHash, Bytes>,
    bytes: usize,
    limit: usize,
}

impl Sites {
    /// Caches holding at most `cache_bytes` of file content.
    pub fn new(cache_bytes: usize) -> Self {
        Self {
            pointers: Mutex::new(HashMap::new()),
            releases: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(MAX_RELEASES).unwrap_or(std::num::NonZeroUsize::MIN),
            )),
            blobs: Mutex::new(BlobCache {
                entries: lru::LruCache::unbounded(),
                bytes: 0,
                limit: cache_bytes,
            }),
        }
    }

    /// The live site at `slug`, or `None` when no app there is published.
    pub async fn site(&self, store: &dyn Store, slug: &str) -> ApiResult<Option<Arc<Site>>> {
        if let Some((at, site)) = lock(&self.pointers).get(slug)
            && at.elapsed() < POINTER_TTL
        {
            return Ok(site.clone());
        }
        let site = match store.publication_by_slug(slug).await? {
            Some(publication) => match publication.release_id.clone() {
                Some(release) => Some(Arc::new(Site {
                    files: self.files(store, &release).await?,
                    publication,
                })),
                None => None,
            },
            None => None,
        };
        let mut pointers = lock(&self.pointers);
        if pointers.len() > 10_000 {
            pointers.retain(|_, (at, _)| at.elapsed() < POINTER_TTL);
        }
        pointers.insert(slug.to_owned(), (Instant::now(), site.clone()));
        Ok(site)
    }

    /// Forgets what `slug` serves, after this instance changed it.
    pub fn invalidate(&self, slug: &str) {
        lock(&self.pointers).remove(slug);
    }

    async fn files(&self, store: &dyn Store, release: &str) -> ApiResult<Files> {
        if let Some(files) = lock(&self.releases).get(release) {
            return Ok(files.clone());
        }
        let files: HashMap<String, ServedFile> = store
            .release_files(release)
            .await?
            .into_iter()
            .map(|f| (f.file.path.clone(), ServedFile::new(f)))
            .collect();
        let files = Arc::new(files);
        lock(&self.releases).put(release.to_owned(), files.clone());
        Ok(files)
    }

    /// A blob's bytes, from memory when hot.
    pub async fn blob(&self, store: &dyn Store, hash: &BlobHash) -> ApiResult<Bytes> {
        if let Some(bytes) = lock(&self.blobs).entries.get(hash) {
            return Ok(bytes.clone());
        }
        let content = store.blob(hash).await?;
        if content.len() > MAX_CACHED_BLOB {
            return Ok(Bytes::from(content));
        }
        // A large file is kept where the edge sends it from without copying.
        let bytes = if content.len() >= sealed::MIN_SEALED {
            sealed::seal(content)
        } else {
            Bytes::from(content)
        };
        let mut cache = lock(&self.blobs);
        if cache.entries.put(hash.clone(), bytes.clone()).is_none() {
            cache.bytes += bytes.len();
        }
        while cache.bytes > cache.limit {
            match cache.entries.pop_lru() {
                Some((_, evicted)) => cache.bytes -= evicted.len(),
                None => break,
            }
        }
        Ok(bytes)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_are_recognised() {
        assert!(hashed_name("assets/index-BxK3c9aQ.js"));
        assert!(hashed_name("assets/index-Bx-3c9aQ.js"));
        assert!(hashed_name("assets/logo.4f3a2b1c9d.svg"));
        assert!(!hashed_name("index.html"));
        assert!(!hashed_name("assets/my-component.js"));
        assert!(!hashed_name("favicon.ico"));
    }

    #[test]
    fn hashed_names_are_immutable_and_others_revalidated_in_their_scope() {
        assert_eq!(
            cache_control("assets/index-BxK3c9aQ.js", true),
            "private, max-age=31536000, immutable"
        );
        assert_eq!(cache_control("index.html", false), "public, no-cache");
    }
}
