//! What published apps are served from: which release each slug serves (re-read from the
//! store at most once a second, so a promote on any instance takes effect everywhere within
//! that time, and at once on the instance that made it), each release's file table
//! (immutable, so kept), and the hot files' bytes in a cache bounded by size.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// A release's files by path.
type Files = Arc<HashMap<String, StoredReleaseFile>>;
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
        let files: HashMap<String, StoredReleaseFile> = store
            .release_files(release)
            .await?
            .into_iter()
            .map(|f| (f.file.path.clone(), f))
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
