//! The rlimit fallback of `[sandbox.limits]`, for hosts without a cgroup controller.

use std::path::Path;
use std::time::Duration;

use draftsmith_sandbox::{IsolationMode, Limits, LimitsMechanism};

use crate::suite::run;
use crate::support::{Deployment, Env};

/// Prints how often JavaScriptCore's optimising JIT compiled a hot function; JSC answers
/// 1,000,000 when its JIT is off, so a test never waits for a compile that cannot come.
const JIT_PROBE: &str = r#"
const jsc = require("bun:jsc");
function hot(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }
for (let k = 0; k < 2000; k++) hot(10000);
console.log("DFG_COMPILES=" + jsc.numberOfDFGCompiles(hot));
"#;

/// Under the `RLIMIT_DATA` fallback a JIT runtime keeps its JIT: Bun's JavaScriptCore, which
/// OpenCode runs on, reserves gigabytes of writable memory up front and ran without its JIT
/// under a data limit of the memory limit alone. A reservation past the memory limit and
/// its allowance still fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jit_runtime_keeps_its_jit_under_the_rlimit_fallback() {
    let limits = Limits {
        mechanism: LimitsMechanism::Rlimit,
        // No rlimit can weigh CPU; a confined start refuses a limit nothing enforces.
        cpu_shares: 0,
        ..Limits::default()
    };
    let env = Env::bounded(Deployment::Local, IsolationMode::Bwrap, limits).await;
    let id = env.sandbox("jit", Duration::from_secs(3600)).await;
    let workspace = env.workspace(&id);
    // OpenCode's binary is Bun with OpenCode inside; `BUN_BE_BUN=1` makes it plain Bun. The
    // sandbox sees only its workspace and the system, so the binary goes in the workspace.
    let pinned = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.tools/opencode/node_modules/.bin/opencode")
        .canonicalize()
        .expect("OpenCode is installed by scripts/setup");
    let bun = workspace.join("bun");
    if std::fs::hard_link(&pinned, &bun).is_err() {
        std::fs::copy(&pinned, &bun).unwrap();
    }
    std::fs::write(workspace.join("jit.js"), JIT_PROBE).unwrap();

    let (code, out) = run(&env, &id, "BUN_BE_BUN=1 ./bun jit.js").await;
    assert_eq!(code, Some(0), "{out}");
    let compiles: u64 = out
        .lines()
        .find_map(|line| line.trim().strip_prefix("DFG_COMPILES="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no DFG_COMPILES line in {out:?}"));
    assert!(
        (1..1_000_000).contains(&compiles),
        "JavaScriptCore's JIT is off in the sandbox ({compiles} compiles): {out}"
    );

    // 7 GiB is past the memory limit (2 GiB) and its allowance (4 GiB); without the rlimit
    // the kernel would hand it out untouched.
    let (code, out) = run(
        &env,
        &id,
        "python3 -c 'b = bytearray(7 << 30); print(\"ALLOCATED\", len(b))'",
    )
    .await;
    assert!(!out.contains("ALLOCATED"), "{out}");
    assert!(out.contains("MemoryError"), "{out}");
    assert_ne!(code, Some(0), "{out}");
}
