//! Spare sandboxes: a new sandbox claims one made ahead (its files are the spare's, not
//! written anew), is refreshed to its own draft like any other, belongs to its own uid,
//! and a spare goes to one sandbox only; a restart deletes spares left behind.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use draftsmith_sandbox::{IsolationMode, LocalController, SandboxController, SpareTemplate};

use crate::suite::run;
use crate::support::{Deployment, Env, eventually, manifest, unique_id};

const HOUR: Duration = Duration::from_secs(3600);
const TEMPLATE: &str = "static";

fn template() -> SpareTemplate {
    SpareTemplate {
        id: TEMPLATE.into(),
        files: vec![
            ("index.html".into(), b"<h1>template</h1>\n".to_vec()),
            ("src/app.js".into(), b"console.log('template');\n".to_vec()),
            ("src/old.js".into(), b"// dropped by the draft\n".to_vec()),
        ],
        contract: CONTRACT.to_vec(),
    }
}

/// The contract a new app of the template is given.
const CONTRACT: &[u8] = br#"{"agent":null,"tools":[]}"#;

/// Every file under `dir` (relative path → content), skipping `.cache`.
fn files_in(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == ".cache" {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The spare directories under the sandboxes root.
fn spare_dirs(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".spare-"))
        .collect()
}

/// An environment keeping one spare of [`TEMPLATE`], once it is made, and that spare.
async fn stocked(deployment: Deployment) -> (Env, std::path::PathBuf) {
    let env = Env::spared(deployment, 1, vec![template()]).await;
    let ready = || env.local.spares_ready(TEMPLATE) == 1;
    assert!(eventually(Duration::from_secs(10), ready).await);
    let root = env.data_dir().join("sandboxes");
    let spare = root.join(&spare_dirs(&root)[0]);
    (env, spare)
}

async fn claims_a_spare_refreshed_to_its_draft(deployment: Deployment) {
    let (env, spare) = stocked(deployment).await;
    let root = env.data_dir().join("sandboxes");
    let spare_ino = std::fs::metadata(spare.join("workspace/index.html"))
        .unwrap()
        .ino();
    assert_eq!(
        files_in(&spare.join("workspace"))
            .keys()
            .collect::<Vec<_>>(),
        ["index.html", "src/app.js", "src/old.js"]
    );

    let id = unique_id("spared");
    let created = env.ctl.create(&id, TEMPLATE, HOUR).await.unwrap();
    assert!(!created.reused);
    let workspace = env.workspace(&id);
    // The spare itself became the sandbox: its file is the same inode, not a copy.
    assert_eq!(
        std::fs::metadata(workspace.join("index.html"))
            .unwrap()
            .ino(),
        spare_ino
    );
    assert!(!spare.exists());

    // It holds a new app's contract already: a run seeding the same writes nothing (the
    // same inode), one seeding another contract replaces it.
    let contract = workspace.join(draftsmith_tools::CONTRACT_FILE);
    let contract_ino = std::fs::metadata(&contract).unwrap().ino();
    let seed = |content: &'static [u8]| {
        env.ctl
            .seed_file(&id, draftsmith_tools::CONTRACT_FILE, content)
    };
    seed(CONTRACT).await.unwrap();
    assert_eq!(std::fs::metadata(&contract).unwrap().ino(), contract_ino);
    assert_eq!(std::fs::read(&contract).unwrap(), CONTRACT);
    seed(br#"{"agent":"other"}"#).await.unwrap();
    assert_eq!(std::fs::read(&contract).unwrap(), br#"{"agent":"other"}"#);
    seed(CONTRACT).await.unwrap();

    // The app's draft differs from its template: the refresh writes only the difference
    // and removes what the draft does not hold.
    let (files, blobs) = manifest(&[
        ("index.html", b"<h1>template</h1>\n"),
        (
            "src/app.js",
            b"console.log('edited before the first run');\n",
        ),
        ("src/new.js", b"// new\n"),
    ]);
    let refreshed = env.ctl.refresh(&id, &files, &blobs).await.unwrap();
    assert_eq!((refreshed.written, refreshed.removed), (2, 1));
    let expected: BTreeMap<String, Vec<u8>> = [
        ("index.html", &b"<h1>template</h1>\n"[..]),
        (
            "src/app.js",
            b"console.log('edited before the first run');\n",
        ),
        ("src/new.js", b"// new\n"),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_owned(), c.to_vec()))
    .collect();
    assert_eq!(files_in(&workspace), expected);
    assert!(env.ctl.snapshot(&id, &files).await.unwrap().is_empty());

    // Its confined processes own what it holds (a sandbox of its own uid writes its files).
    let (code, out) = run(
        &env,
        &id,
        "echo more >> index.html && echo ok > src/made.js && id -u",
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    let uid: u32 = out.trim().parse().unwrap();
    assert_eq!(
        std::fs::metadata(workspace.join("index.html"))
            .unwrap()
            .uid(),
        uid
    );

    // A new spare is made for the next sandbox.
    assert!(
        eventually(Duration::from_secs(10), || env.local.spares_ready(TEMPLATE)
            == 1)
        .await
    );
    assert_eq!(spare_dirs(&root).len(), 1);
}

async fn a_spare_goes_to_one_sandbox_only(deployment: Deployment) {
    let (env, spare) = stocked(deployment).await;
    let spare_ino = std::fs::metadata(spare.join("workspace")).unwrap().ino();
    let ids: Vec<_> = (0..4).map(|i| unique_id(&format!("race{i}"))).collect();
    let mut creating = tokio::task::JoinSet::new();
    for id in &ids {
        let (ctl, id) = (env.ctl.clone(), id.clone());
        creating.spawn(async move { ctl.create(&id, TEMPLATE, HOUR).await });
    }
    while let Some(created) = creating.join_next().await {
        assert!(!created.unwrap().unwrap().reused);
    }
    let claimed = ids
        .iter()
        .filter(|id| std::fs::metadata(env.workspace(id)).unwrap().ino() == spare_ino)
        .count();
    assert_eq!(claimed, 1, "the spare went to exactly one sandbox");
    // Every sandbox, spared or not, refreshes to its own files.
    for (i, id) in ids.iter().enumerate() {
        let body = format!("sandbox {i}\n");
        let (files, blobs) = manifest(&[("index.html", body.as_bytes())]);
        env.ctl.refresh(id, &files, &blobs).await.unwrap();
        let expected = BTreeMap::from([("index.html".to_owned(), body.into_bytes())]);
        assert_eq!(files_in(&env.workspace(id)), expected);
    }
}

mod local {
    use crate::support::Deployment;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claims_a_spare_refreshed_to_its_draft() {
        super::claims_a_spare_refreshed_to_its_draft(Deployment::Local).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_spare_goes_to_one_sandbox_only() {
        super::a_spare_goes_to_one_sandbox_only(Deployment::Local).await;
    }
}

mod remote {
    use crate::support::Deployment;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claims_a_spare_refreshed_to_its_draft() {
        super::claims_a_spare_refreshed_to_its_draft(Deployment::Remote).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_spare_goes_to_one_sandbox_only() {
        super::a_spare_goes_to_one_sandbox_only(Deployment::Remote).await;
    }
}

/// A claimed spare comes with its maker's change notification on every directory: what
/// changes in it before its first refresh (a file rewritten and one removed in a
/// subdirectory, as its processes could) is noticed, and the template's files are written
/// back; unchanged, the next refresh writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_spare_notices_what_changes_in_it() {
    let (env, _) = stocked(Deployment::Local).await;
    let id = unique_id("noticed");
    env.ctl.create(&id, TEMPLATE, HOUR).await.unwrap();
    let workspace = env.workspace(&id);
    let (files, blobs) = manifest(
        &template()
            .files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_slice()))
            .collect::<Vec<_>>(),
    );
    let refreshed = env.ctl.refresh(&id, &files, &blobs).await.unwrap();
    assert_eq!((refreshed.written, refreshed.removed), (0, 0));

    std::fs::write(
        workspace.join("src/app.js"),
        b"console.log('changed');
",
    )
    .unwrap();
    std::fs::remove_file(workspace.join("src/old.js")).unwrap();
    let refreshed = env.ctl.refresh(&id, &files, &blobs).await.unwrap();
    assert_eq!((refreshed.written, refreshed.removed), (2, 0));
    let expected: BTreeMap<String, Vec<u8>> = template().files.into_iter().collect();
    assert_eq!(files_in(&workspace), expected);
    let refreshed = env.ctl.refresh(&id, &files, &blobs).await.unwrap();
    assert_eq!((refreshed.written, refreshed.removed), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_of_another_template_is_made_without_one() {
    let env = Env::spared(Deployment::Local, 1, vec![template()]).await;
    assert!(
        eventually(Duration::from_secs(10), || env.local.spares_ready(TEMPLATE)
            == 1)
        .await
    );
    let id = unique_id("other");
    env.ctl.create(&id, "vite-react", HOUR).await.unwrap();
    assert!(files_in(&env.workspace(&id)).is_empty());
    assert_eq!(env.local.spares_ready(TEMPLATE), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_deletes_spares_left_behind() {
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (root, cache) = (data.path().join("sandboxes"), data.path().join("cache"));
    let first = LocalController::new(root.clone(), cache.clone(), IsolationMode::None)
        .unwrap()
        .with_spares(2, vec![template()]);
    assert!(
        eventually(Duration::from_secs(10), || first.spares_ready(TEMPLATE)
            == 2)
        .await
    );
    drop(first);
    assert_eq!(spare_dirs(&root).len(), 2);
    let second = LocalController::new(root.clone(), cache, IsolationMode::None).unwrap();
    assert!(spare_dirs(&root).is_empty());
    assert_eq!(second.spares_ready(TEMPLATE), 0);
    // Nothing left by the spares counts as a sandbox.
    assert_eq!(second.sandbox_count(), Some(0));
}
