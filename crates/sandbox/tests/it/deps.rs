//! The shared dependency cache on the real `vite-react` template: `npm ci` once per
//! lockfile, hard-linked into each workspace, `vite build` working under bubblewrap, and
//! the cache safe from a sandbox's in-place writes. Needs the npm registry.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use draftsmith_sandbox::{ExecRequest, SandboxId};
use tokio_util::sync::CancellationToken;

use crate::support::{Deployment, Env, manifest};

async fn seeded(env: &Env, name: &str) -> SandboxId {
    let id = env.sandbox(name, Duration::from_secs(3600)).await;
    let template = draftsmith_templates::find("vite-react").unwrap();
    let files = template.files();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    let (entries, blobs) = manifest(&files);
    env.ctl.refresh(&id, &entries, &blobs).await.unwrap();
    id
}

fn exec(command: &str) -> ExecRequest {
    ExecRequest {
        command: command.to_owned(),
        timeout: Duration::from_secs(300),
        max_output_bytes: 16 * 1024,
        env: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_ci_runs_once_and_vite_builds_in_the_sandbox() {
    let env = Env::new(Deployment::Local).await;
    let (a, b) = (seeded(&env, "deps-a").await, seeded(&env, "deps-b").await);

    let started = Instant::now();
    assert!(env.ctl.prepare_dependencies(&a).await.unwrap());
    let cold = started.elapsed();
    let started = Instant::now();
    assert!(env.ctl.prepare_dependencies(&b).await.unwrap());
    let warm = started.elapsed();
    let started = Instant::now();
    assert!(env.ctl.prepare_dependencies(&b).await.unwrap());
    let again = started.elapsed();
    eprintln!("dependencies: npm ci + link {cold:?}, link only {warm:?}, already linked {again:?}");
    assert!(
        warm < Duration::from_secs(2),
        "the second sandbox re-installed: {warm:?}"
    );

    let installs: Vec<_> = std::fs::read_dir(env.data_dir().join("cache/node_modules"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(installs.len(), 1, "one install per lockfile: {installs:?}");
    let file = "node_modules/react/package.json";
    let (in_a, in_b) = (env.workspace(&a).join(file), env.workspace(&b).join(file));
    assert_eq!(
        in_a.metadata().unwrap().ino(),
        in_b.metadata().unwrap().ino()
    );

    let build = env
        .ctl
        .exec(&a, exec("npm run build"), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(build.exit_code, Some(0), "{}", build.output);
    assert!(env.workspace(&a).join("dist/index.html").exists());

    // A confined process cannot change a shared file in place, but may replace its own link.
    let tamper = "echo evil >> node_modules/react/package.json";
    let out = env
        .ctl
        .exec(&a, exec(tamper), CancellationToken::new())
        .await
        .unwrap();
    assert_ne!(
        out.exit_code,
        Some(0),
        "in-place write to the shared cache succeeded"
    );
    let replace =
        "rm node_modules/react/package.json && echo mine > node_modules/react/package.json";
    let out = env
        .ctl
        .exec(&a, exec(replace), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(0), "{}", out.output);
    let shared = std::fs::read_to_string(&in_b).unwrap();
    assert!(
        shared.contains("\"name\": \"react\""),
        "the cache changed: {shared}"
    );

    let changes = env.ctl.snapshot(&a, &[]).await.unwrap();
    assert!(
        changes
            .iter()
            .all(|c| !c.path.starts_with("node_modules") && !c.path.starts_with("dist")),
        "{:?}",
        changes.iter().map(|c| &c.path).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_workspace_without_a_lockfile_links_nothing() {
    let env = Env::new(Deployment::Remote).await;
    let id = env.sandbox("nolock", Duration::from_secs(3600)).await;
    assert!(!env.ctl.prepare_dependencies(&id).await.unwrap());
}
