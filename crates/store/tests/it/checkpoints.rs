//! Checkpoints: a checkpoint's manifest is the draft at its revision (plus detached work),
//! and restoring makes the draft equal to one as a new revision.

use draftsmith_core::api::{Checkpoint, CheckpointKind};
use draftsmith_core::{AppEventBody, BlobHash};
use draftsmith_store::prelude::*;
use draftsmith_store::{NewCheckpoint, StoreError, diff_manifests};
use draftsmith_testkit::StoreKind;

use crate::support::{Fixture, alice, delete, files, pairs, put};

draftsmith_testkit::both_stores!(
    a_checkpoint_manifest_is_the_draft_at_its_revision,
    a_detached_checkpoint_adds_its_changes,
    restore_makes_a_new_revision_after_a_restore_checkpoint,
    restore_is_refused_while_a_run_is_active,
    restore_reaches_every_checkpoint_whatever_the_history,
    restore_records_exactly_what_it_changed,
);

fn manual(app: draftsmith_core::AppId, revision: i64) -> NewCheckpoint {
    NewCheckpoint::manual(app, revision, "by hand", alice())
}

/// A `rejected` checkpoint at `revision` whose detached work writes `path` with `content`
/// and deletes `gone`.
async fn rejected(
    f: &Fixture,
    app: draftsmith_core::AppId,
    revision: i64,
    (path, content): (&str, &[u8]),
    gone: &str,
) -> Checkpoint {
    let hash = BlobHash::of(content);
    f.store.blobs().put_many(&[(&hash, content)]).await.unwrap();
    let mut new = manual(app, revision);
    new.kind = CheckpointKind::Rejected;
    new.detached = Some(vec![
        (path.into(), Some((hash, content.len() as i64))),
        (gone.into(), None),
    ]);
    f.store.create_checkpoint(new).await.unwrap()
}

async fn a_checkpoint_manifest_is_the_draft_at_its_revision(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let first = f.store.create_checkpoint(manual(app, 1)).await.unwrap();
    let changes = vec![put("index.html", "v2"), put("a.txt", "a")];
    f.write(app, Some(1), changes).await.unwrap();
    let second = f.store.create_checkpoint(manual(app, 2)).await.unwrap();
    f.write(app, Some(2), vec![delete("a.txt")]).await.unwrap();

    let at_first = f.store.checkpoint_manifest(&first).await.unwrap();
    assert_eq!(at_first, f.store.manifest_at(app, 1).await.unwrap());
    assert_eq!(
        files(&f.store, &at_first).await,
        pairs(&[("index.html", "v1")])
    );
    let at_second = f.store.checkpoint_manifest(&second).await.unwrap();
    assert_eq!(at_second, f.store.manifest_at(app, 2).await.unwrap());

    let read = f.store.checkpoint(&second.id).await.unwrap();
    assert_eq!(
        (read.kind, read.revision, read.label.as_str()),
        (CheckpointKind::Manual, 2, "by hand")
    );
    let listed = f.store.checkpoints(app, 10, None).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, vec![second.id.as_str(), first.id.as_str()]);

    let diff = diff_manifests(&at_first, &at_second);
    assert_eq!(
        (diff.added, diff.modified),
        (vec!["a.txt".to_owned()], vec!["index.html".to_owned()])
    );
    let net = f.store.changes_between(app, 1, 3).await.unwrap();
    assert!(
        net.added.is_empty(),
        "added then deleted nets to nothing: {net:?}"
    );
    assert_eq!(net.modified, vec!["index.html"]);

    let future = f.store.create_checkpoint(manual(app, 4)).await;
    assert!(
        matches!(future, Err(StoreError::NotFound("revision"))),
        "{future:?}"
    );
    let missing = f.store.checkpoint("nope").await;
    assert!(matches!(missing, Err(StoreError::NotFound("checkpoint"))));
}

async fn a_detached_checkpoint_adds_its_changes(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let rejected = rejected(&f, app, 1, ("work.txt", b"rejected work"), "index.html").await;
    let manifest = f.store.checkpoint_manifest(&rejected).await.unwrap();
    assert_eq!(manifest.revision, 1);
    assert_eq!(
        files(&f.store, &manifest).await,
        pairs(&[("work.txt", "rejected work")])
    );
    // The draft itself did not move.
    let draft = f.store.draft(app).await.unwrap();
    assert_eq!(
        files(&f.store, &draft).await,
        pairs(&[("index.html", "v1")])
    );
}

async fn restore_makes_a_new_revision_after_a_restore_checkpoint(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let changes = vec![put("index.html", "v2"), put("a.txt", "a")];
    f.write(app, Some(1), changes).await.unwrap();
    let target = f.store.manifest_at(app, 1).await.unwrap();
    let first = f.store.create_checkpoint(manual(app, 1)).await.unwrap();

    let (write, checkpoint) = f.store.restore_to(&first, &alice(), "undo").await.unwrap();
    assert_eq!(write.revision, 3);
    assert_eq!(write.changes.modified, vec!["index.html"]);
    assert_eq!(write.changes.deleted, vec!["a.txt"]);
    assert_eq!(checkpoint.kind, CheckpointKind::Restore);
    assert_eq!(
        checkpoint.revision, 2,
        "the restore checkpoint keeps what it replaced"
    );
    assert_eq!(checkpoint.label, "undo");
    let draft = f.store.draft(app).await.unwrap();
    assert_eq!(draft.revision, 3);
    assert_eq!(draft.files, target.files);
    let replaced = f.store.checkpoint_manifest(&checkpoint).await.unwrap();
    assert_eq!(
        files(&f.store, &replaced).await,
        pairs(&[("a.txt", "a"), ("index.html", "v2")])
    );

    // Restoring to what the draft already is still makes a revision.
    let same = f.store.create_checkpoint(manual(app, 3)).await.unwrap();
    let (again, _) = f.store.restore_to(&same, &alice(), "again").await.unwrap();
    assert_eq!(again.revision, 4);
    assert!(
        again.changes.added.is_empty()
            && again.changes.modified.is_empty()
            && again.changes.deleted.is_empty()
    );
}

async fn restore_is_refused_while_a_run_is_active(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let run = f.run(app).await.unwrap();
    let target = f.store.create_checkpoint(manual(app, 1)).await.unwrap();
    let refused = f.store.restore_to(&target, &alice(), "undo").await;
    assert!(
        matches!(refused, Err(StoreError::RunActive { run_id: Some(id) }) if id == run.run_id),
        "{refused:?}"
    );
    assert_eq!(f.store.draft(app).await.unwrap().revision, 1);
    let checkpoints = f.store.checkpoints(app, 10, None).await.unwrap();
    assert!(
        checkpoints
            .iter()
            .all(|c| c.kind != CheckpointKind::Restore)
    );
}

/// Restoring reads only the change log since the checkpoint (and its detached paths): after
/// a history of adds, edits, deletions, re-adds and earlier restores, restoring each
/// checkpoint, in an order that goes back and forth, makes the draft exactly its manifest.
async fn restore_reaches_every_checkpoint_whatever_the_history(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let history = [
        vec![put("a.txt", "a1"), put("b.txt", "b1")],
        vec![put("a.txt", "a2"), delete("index.html")],
        vec![delete("b.txt"), put("c/d.txt", "d1")],
        vec![put("b.txt", "b2"), put("index.html", "v1")],
        vec![put("a.txt", "a1"), delete("c/d.txt")],
    ];
    let mut checkpoints = vec![f.store.create_checkpoint(manual(app, 1)).await.unwrap()];
    for changes in history {
        let written = f.write(app, None, changes).await.unwrap();
        let checkpoint = manual(app, written.revision);
        checkpoints.push(f.store.create_checkpoint(checkpoint).await.unwrap());
    }
    // Work that never became a revision, on top of revision 3.
    let content = b"detached".to_vec();
    let hash = BlobHash::of(&content);
    f.store
        .blobs()
        .put_many(&[(&hash, &content)])
        .await
        .unwrap();
    let mut rejected = manual(app, 3);
    rejected.kind = CheckpointKind::Rejected;
    rejected.detached = Some(vec![
        ("a.txt".into(), Some((hash.clone(), content.len() as i64))),
        ("e.txt".into(), Some((hash, content.len() as i64))),
        ("c/d.txt".into(), None),
    ]);
    checkpoints.push(f.store.create_checkpoint(rejected).await.unwrap());

    for index in [0, 5, 2, 6, 1, 4, 3, 6, 0] {
        let target = &checkpoints[index];
        let before = f.store.draft(app).await.unwrap();
        let wanted = f.store.checkpoint_manifest(target).await.unwrap();
        let (write, _) = f.store.restore_to(target, &alice(), "step").await.unwrap();
        let after = f.store.draft(app).await.unwrap();
        assert_eq!(after.revision, before.revision + 1);
        assert_eq!(
            files(&f.store, &after).await,
            files(&f.store, &wanted).await,
            "restoring checkpoint {index}"
        );
        assert_eq!(
            write.changes,
            diff_manifests(&before, &after),
            "the reported changes are what differs, restoring checkpoint {index}"
        );
    }
}

/// A restore's records: the change log holds exactly the paths it changed (adds, edits and
/// deletes, detached ones too), the replaced revision stays readable, the restore
/// checkpoint reads back as answered, and the app's log tells of the revision once, in
/// order after what came before.
async fn restore_records_exactly_what_it_changed(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let changes = vec![put("a.txt", "a1"), put("b.txt", "b1")];
    f.write(app, Some(1), changes).await.unwrap();
    let target = rejected(&f, app, 2, ("d.txt", b"detached"), "b.txt").await;
    let changes = vec![put("a.txt", "a2"), delete("index.html"), put("c.txt", "c")];
    f.write(app, Some(2), changes).await.unwrap();
    let replaced = f.store.draft(app).await.unwrap();
    let seq_before = f.store.app_events_after(app, 0, 1000).await.unwrap().len() as i64;

    let (write, checkpoint) = f.store.restore_to(&target, &alice(), "back").await.unwrap();
    assert_eq!(write.revision, 4);
    assert_eq!(write.changes.added, vec!["d.txt", "index.html"]);
    assert_eq!(write.changes.modified, vec!["a.txt"]);
    assert_eq!(write.changes.deleted, vec!["b.txt", "c.txt"]);
    let draft = f.store.draft(app).await.unwrap();
    assert_eq!(
        files(&f.store, &draft).await,
        pairs(&[("a.txt", "a1"), ("d.txt", "detached"), ("index.html", "v1")])
    );
    assert_eq!(
        f.store.changes_between(app, 3, 4).await.unwrap(),
        write.changes
    );
    assert_eq!(f.store.manifest_at(app, 3).await.unwrap(), replaced);
    assert_eq!(
        f.store.checkpoint(&checkpoint.id).await.unwrap(),
        checkpoint
    );
    assert_eq!(
        f.store.checkpoint_manifest(&checkpoint).await.unwrap(),
        replaced
    );
    let events = f.store.app_events_after(app, 0, 1000).await.unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seq_before + 1).collect::<Vec<_>>());
    let last = events.last().unwrap();
    assert!(
        matches!(&last.body, AppEventBody::DraftRevised { revision: 4, author } if *author == alice()),
        "{last:?}"
    );

    // Restoring where nothing differs records a revision and no change.
    let same = f.store.create_checkpoint(manual(app, 4)).await.unwrap();
    let (again, _) = f.store.restore_to(&same, &alice(), "again").await.unwrap();
    assert_eq!(again.revision, 5);
    assert!(f.store.changes_between(app, 4, 5).await.unwrap().is_empty());
    assert_eq!(f.store.draft(app).await.unwrap().files, draft.files);
}
