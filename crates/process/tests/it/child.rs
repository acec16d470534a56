//! `ChildSetup`: what a child does before exec, observed from the child.

use std::io::{Read, Write};
use std::sync::Arc;

use draftsmith_process::{ChildSetup, NetNamespace, Rlimit, is_root, pids_mentioning};

use crate::support::{eventually, marked, run_alone, sh};

async fn output_of(text: &str, setup: ChildSetup) -> String {
    let mut command = sh(text);
    setup.install(&mut command);
    let out = run_alone(command, 10_000).await.unwrap();
    assert_eq!(out.exit_code, Some(0), "{}", out.output);
    out.output
}

#[tokio::test]
async fn rlimits_apply_and_sigxfsz_is_ignored() {
    let setup = ChildSetup {
        rlimits: vec![Rlimit::OpenFiles(64), Rlimit::FileSize(4096)],
        ..ChildSetup::default()
    };
    let text = "ulimit -n; ulimit -Hn; \
                dd if=/dev/zero of=\"$(mktemp)\" bs=8192 count=1 2>/dev/null; echo dd=$?";
    let out = output_of(text, setup).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["64", "64"], "{out}");
    // The write past the limit fails instead of killing dd with SIGXFSZ.
    assert_eq!(lines.last(), Some(&"dd=1"), "{out}");
}

#[tokio::test]
async fn the_child_dies_with_the_thread_that_spawned_it() {
    let (mark, _leftovers) = marked();
    std::thread::spawn({
        let mark = mark.clone();
        move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                // `sleep` itself, not through a shell that might fork it as a grandchild.
                let mut command = tokio::process::Command::new("sleep");
                command.arg(&mark);
                ChildSetup::dying_with_parent().install(&mut command);
                // Neither waited for nor killed on drop: only the parent-death signal ends it.
                std::mem::forget(command.spawn().unwrap());
            });
        }
    })
    .join()
    .unwrap();
    let left = || pids_mentioning(&mark);
    assert!(eventually(|| left().is_empty()).await, "{:?}", left());
}

#[tokio::test]
async fn a_child_enters_a_namespace() {
    if !is_root() {
        eprintln!("skipped: entering a network namespace needs root");
        return;
    }
    let mut holder = std::process::Command::new("unshare")
        .args(["--net", "sleep", "30"])
        .spawn()
        .unwrap();
    let path = format!("/proc/{}/ns/net", holder.id());
    let mut target = String::new();
    for _ in 0..100 {
        target = std::fs::read_link(&path).unwrap().display().to_string();
        if target
            != std::fs::read_link("/proc/self/ns/net")
                .unwrap()
                .display()
                .to_string()
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let fd = std::fs::File::open(&path).unwrap();
    let setup = ChildSetup {
        namespaces: vec![Arc::new(fd.into())],
        ..ChildSetup::default()
    };
    let out = output_of("readlink /proc/self/ns/net", setup).await;
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(out.trim(), target);
}

#[tokio::test]
async fn a_child_joins_a_new_network_namespace_with_loopback_up() {
    if !is_root() {
        eprintln!("skipped: making a network namespace needs root");
        return;
    }
    let (namespace, echoed) = NetNamespace::create(|| {
        // Inside: a connection over loopback only works once `lo` is up.
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let mut client = std::net::TcpStream::connect(listener.local_addr()?)?;
        let (mut server, _) = listener.accept()?;
        client.write_all(b"up")?;
        let mut buf = [0u8; 2];
        server.read_exact(&mut buf)?;
        Ok(buf)
    })
    .unwrap();
    assert_eq!(&echoed, b"up");
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(
        ours.display().to_string(),
        format!("net:[{}]", namespace.inode)
    );
    let setup = ChildSetup {
        namespaces: vec![namespace.fd.clone()],
        ..ChildSetup::default()
    };
    let out = output_of("readlink /proc/self/ns/net", setup).await;
    assert_eq!(out.trim(), format!("net:[{}]", namespace.inode));
}
