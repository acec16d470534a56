//! Releases and publications: numbering, the live pointer, visibility.

use draftsmith_core::BlobHash;
use draftsmith_core::publish::{ReleaseFile, Visibility};
use draftsmith_store::prelude::*;
use draftsmith_store::{Encoded, NewRelease, StoreError, StoredReleaseFile};
use draftsmith_testkit::StoreKind;

use crate::support::{Fixture, alice};

draftsmith_testkit::both_stores!(releases_are_numbered_and_one_is_live);

async fn release(f: &Fixture, app: draftsmith_core::AppId, promote: bool) -> NewRelease {
    let (content, gzip) = (b"<html></html>".to_vec(), b"gz".to_vec());
    let (hash, gzip_hash) = (BlobHash::of(&content), BlobHash::of(&gzip));
    let blobs = [(&hash, content.as_slice()), (&gzip_hash, gzip.as_slice())];
    f.store.blobs().put_many(&blobs).await.unwrap();
    NewRelease {
        app,
        revision: 1,
        checkpoint_id: None,
        build_log: "built".into(),
        files: vec![StoredReleaseFile {
            file: ReleaseFile {
                path: "index.html".into(),
                size: content.len() as i64,
                sha256: hash,
                content_type: "text/html".into(),
            },
            gzip: Some(Encoded {
                hash: gzip_hash,
                size: 2,
            }),
            brotli: None,
        }],
        by: alice(),
        promote,
    }
}

async fn releases_are_numbered_and_one_is_live(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let never = f.store.publication(app).await.unwrap();
    assert_eq!(
        (never.release_id, never.visibility),
        (None, Visibility::Public)
    );

    let first = f
        .store
        .create_release(release(&f, app, true).await)
        .await
        .unwrap();
    let second = f
        .store
        .create_release(release(&f, app, false).await)
        .await
        .unwrap();
    assert_eq!((first.number, first.live), (1, true));
    assert_eq!(
        (second.number, second.live, second.file_count),
        (2, false, 1)
    );
    let files = f.store.release_files(&first.id).await.unwrap();
    assert_eq!(files, release(&f, app, true).await.files);

    let promoted = f.store.promote_release(app, &second.id).await.unwrap();
    assert_eq!(promoted.release_id.as_deref(), Some(second.id.as_str()));
    let listed = f.store.releases(app).await.unwrap();
    let live: Vec<(i64, bool)> = listed.iter().map(|r| (r.number, r.live)).collect();
    assert_eq!(live, [(2, true), (1, false)]);

    let other = f.app_named("Other").await;
    let foreign = f.store.promote_release(other, &first.id).await;
    assert!(
        matches!(foreign, Err(StoreError::NotFound("release"))),
        "{foreign:?}"
    );

    let private = f
        .store
        .set_visibility(app, Visibility::Private, Some("kh".into()))
        .await;
    assert_eq!(private.unwrap().key_hash.as_deref(), Some("kh"));
    let by_slug = f.store.publication_by_slug("demo").await.unwrap().unwrap();
    assert_eq!(by_slug.visibility, Visibility::Private);
    assert!(
        f.store
            .publication_by_slug("nothing")
            .await
            .unwrap()
            .is_none()
    );
    let offline = f.store.unpublish(app).await.unwrap();
    assert_eq!(offline.release_id, None);
    assert_eq!(f.store.releases(app).await.unwrap().len(), 2);
}
