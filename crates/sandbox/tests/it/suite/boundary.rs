//! The trust boundary's identity and limits (issue 15): an unprivileged uid per sandbox,
//! and a sandbox that forks, allocates or writes without bound hits its own limits, named
//! in its output, while another sandbox goes on working.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use draftsmith_sandbox::{IsolationMode, Limits, Mechanism, SandboxError};

use super::{HOUR, run};
use crate::support::{Deployment, Env, eventually, marker, pids_with};

/// The uid a script printed as `UID=<n>`; stdout and stderr arrive through separate pipes,
/// so the line's place among the error lines is not fixed.
fn uid_in(text: &str) -> u32 {
    text.lines()
        .find_map(|line| line.trim().strip_prefix("UID="))
        .unwrap_or_else(|| panic!("no UID= line in {text:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

pub(super) async fn sandboxes_run_as_unprivileged_uids_of_their_own(d: Deployment) {
    let env = Env::new(d).await;
    let report = env.local.limits_report();
    assert_eq!(
        report.identity, "per_sandbox_uid",
        "these tests run as root"
    );
    let a = env.sandbox("who-a", HOUR).await;
    let b = env.sandbox("who-b", HOUR).await;
    // A file the service wrote (as a refresh does) is the sandbox's to edit.
    std::fs::write(env.workspace(&a).join("host.txt"), b"host\n").unwrap();
    let (code, text) = run(
        &env,
        &a,
        "echo UID=$(id -u); cat /etc/shadow || echo SHADOW-REFUSED; echo edit >> host.txt && echo EDITED; \
         echo made > made.txt; kill -0 1 2>/dev/null || echo INIT-UNTOUCHABLE",
    )
    .await;
    assert_eq!(code, Some(0), "{text}");
    let uid_a = uid_in(&text);
    assert_ne!(uid_a, 0, "{text}");
    assert!(
        text.contains("SHADOW-REFUSED") && !text.contains("root:"),
        "{text}"
    );
    assert!(text.contains("EDITED"), "{text}");
    assert!(
        text.contains("INIT-UNTOUCHABLE"),
        "root's processes take no signal: {text}"
    );
    let ws = env.workspace(&a);
    assert_eq!(std::fs::read(ws.join("host.txt")).unwrap(), b"host\nedit\n");
    assert_eq!(std::fs::read(ws.join("made.txt")).unwrap(), b"made\n");
    assert_eq!(ws.join("made.txt").metadata().unwrap().uid(), uid_a);
    let (_, text_b) = run(&env, &b, "echo UID=$(id -u)").await;
    let uid_b = uid_in(&text_b);
    assert!(uid_b != 0 && uid_b != uid_a, "sandboxes share uid {uid_a}");
}

pub(super) async fn a_fork_bomb_hits_the_process_limit_while_another_sandbox_works(d: Deployment) {
    let limits = Limits {
        processes: 64,
        ..Limits::default()
    };
    let env = Env::bounded(d, IsolationMode::Bwrap, limits).await;
    assert!(
        matches!(
            env.local.limits_report().processes,
            Mechanism::CgroupV1 | Mechanism::CgroupV2
        ),
        "{:?}",
        env.local.limits_report()
    );
    let a = env.sandbox("bomb-a", HOUR).await;
    let b = env.sandbox("bomb-b", HOUR).await;
    let mark = marker();
    let bomb = format!("while :; do sleep {mark} & done");
    let (bombed, worked) = tokio::join!(
        run(&env, &a, &bomb),
        run(
            &env,
            &b,
            "for i in 1 2 3 4 5 6 7 8; do sh -c 'echo step' ; done; echo B-DONE"
        )
    );
    let (code, text) = bombed;
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("Cannot fork"), "{text}");
    assert!(
        text.contains("the sandbox's process limit (64) was reached"),
        "{text}"
    );
    assert_eq!(worked.0, Some(0), "{}", worked.1);
    assert!(worked.1.contains("B-DONE"), "{}", worked.1);
    assert!(
        eventually(Duration::from_secs(10), || pids_with(&mark).is_empty()).await,
        "the bomb's processes outlived it"
    );
    // The command's last processes (bubblewrap's init) leave the cgroup a moment after the
    // bomb's own are gone.
    assert!(
        eventually(Duration::from_secs(10), || env.local.cgroup_population(&a)
            == Some(0))
        .await,
        "{:?} processes left in the cgroup",
        env.local.cgroup_population(&a)
    );
    env.ctl.stop(&a).await.unwrap();
    assert_eq!(env.local.cgroup_population(&a), None, "the cgroup stays");
}

pub(super) async fn the_sandboxes_weigh_one_share_per_cpu_against_the_host(d: Deployment) {
    let limits = Limits {
        // Neither weight is a default (1024, v2's 100) on any number of CPUs.
        cpu_shares: 768,
        ..Limits::default()
    };
    let env = Env::bounded(d, IsolationMode::Bwrap, limits).await;
    let a = env.sandbox("weighed", HOUR).await;
    let (code, text) = run(&env, &a, "echo UP").await;
    assert_eq!((code, text.trim()), (Some(0), "UP"));
    let cpus = std::thread::available_parallelism().unwrap().get() as u64;
    let expected = match env.local.limits_report().cpu {
        // cpu.shares: v1's own scale.
        Mechanism::CgroupV1 => (768, 768 * cpus),
        // cpu.weight: 100 for v1's 1024.
        Mechanism::CgroupV2 => (75, 75 * cpus),
        other => panic!("cpu_shares enforced by {other:?}, not a cgroup"),
    };
    assert_eq!(env.local.cgroup_cpu_weights(&a), Some(expected));
}

pub(super) async fn memory_past_the_limit_is_killed_and_named(d: Deployment) {
    let limits = Limits {
        memory_mib: 64,
        ..Limits::default()
    };
    let env = Env::bounded(d, IsolationMode::Bwrap, limits).await;
    let a = env.sandbox("hog", HOUR).await;
    let (code, text) = run(
        &env,
        &a,
        "python3 -c 'b = b\"x\" * (256 << 20); print(\"ALLOCATED\", len(b))'",
    )
    .await;
    assert!(!text.contains("ALLOCATED"), "{text}");
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("the sandbox's memory limit (64 MiB) was exceeded"),
        "{text}"
    );
    let (code, text) = run(&env, &a, "echo STILL-WORKS").await;
    assert_eq!((code, text.trim()), (Some(0), "STILL-WORKS"));
}

pub(super) async fn writes_past_the_disk_limit_fail_and_sync_refuses(d: Deployment) {
    let limits = Limits {
        disk_mib: 8,
        ..Limits::default()
    };
    let env = Env::bounded(d, IsolationMode::Bwrap, limits).await;
    let a = env.sandbox("disk", HOUR).await;
    let (code, text) = run(&env, &a, "head -c 16777216 /dev/zero > big.bin").await;
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("File too large"), "{text}");
    let size = env.workspace(&a).join("big.bin").metadata().unwrap().len();
    assert!(size <= 8 << 20, "{size}");
    let (code, text) = run(
        &env,
        &a,
        "rm big.bin; head -c 6000000 /dev/zero > one.bin && head -c 6000000 /dev/zero > two.bin",
    )
    .await;
    assert_eq!(code, Some(0), "{text}");
    match env.ctl.snapshot(&a, &[]).await {
        Err(SandboxError::WorkspaceTooLarge { bytes, limit_bytes }) => {
            assert_eq!((bytes, limit_bytes), (12_000_000, 8 << 20));
        }
        other => panic!("an oversize workspace was synced: {other:?}"),
    }
}
