//! Confinement by bubblewrap: the system read-only, the workspace and a private HOME
//! writable, a private `/tmp`, `/proc` and PID namespace, and nothing of the service's data
//! directory or of other sandboxes mounted at all.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use draftsmith_tools::{CommandOutput, CommandRequest, CommandRunner, ToolError};
use tokio_util::sync::CancellationToken;

use crate::enclosure::Enclosure;
use crate::process::{ProcessGroups, run_shell};

mod network;

pub use crate::egress::Network;

/// System directories made visible read-only (symlinks such as merged-/usr `/bin` are
/// recreated as symlinks); everything else of the host is absent inside.
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// What one sandbox's processes may see: the mount plan handed to `bwrap`.
#[derive(Debug, Clone)]
pub struct BwrapProfile {
    /// The `bwrap` binary.
    pub bwrap: PathBuf,
    /// Bound writable at their own path (the workspace and the private HOME).
    pub writable: Vec<PathBuf>,
    /// Extra host paths bound read-only at their own path.
    pub readonly: Vec<PathBuf>,
    /// Paths covered with an empty tmpfs when a read-only bind would expose them (the data
    /// directory, the sandboxes root, the dependency cache).
    pub hidden: Vec<PathBuf>,
    /// Network sharing.
    pub network: Network,
    /// The host uid (and gid) the command runs as, switched to inside once the mounts are
    /// made; `None` keeps the service's.
    pub identity: Option<u32>,
}

impl BwrapProfile {
    /// The `bwrap` arguments (before `--`) for a command starting in `cwd`. Order matters:
    /// read-only binds, then tmpfs over hidden paths they would expose, then this sandbox's
    /// own writable binds on top.
    pub fn args(&self, cwd: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = [
            "--die-with-parent",
            "--new-session",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "sandbox",
            "--cap-drop",
            "ALL",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        if self.identity.is_some() {
            // Only `setpriv` (see `entry`) uses these; the switch to a non-root uid clears
            // every capability before the command runs.
            for cap in ["CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"] {
                args.extend(["--cap-add", cap].map(OsString::from));
            }
        }
        let mut bound = Vec::new();
        for dir in SYSTEM_DIRS.iter().map(Path::new) {
            let Ok(meta) = dir.symlink_metadata() else {
                continue;
            };
            if meta.file_type().is_symlink() {
                if let Ok(target) = std::fs::read_link(dir) {
                    push(&mut args, "--symlink", &target, dir);
                }
            } else if meta.is_dir() {
                push(&mut args, "--ro-bind", dir, dir);
                bound.push(dir.to_path_buf());
            }
        }
        if let Some(resolv) = resolv_conf_outside_etc() {
            push(&mut args, "--ro-bind", &resolv, &resolv);
            bound.push(resolv);
        }
        for flag in [["--proc", "/proc"], ["--dev", "/dev"], ["--perms", "1777"]] {
            args.extend(flag.iter().map(OsString::from));
        }
        args.extend(["--tmpfs", "/tmp"].map(OsString::from));
        if self.identity.is_some() {
            let all: Vec<PathBuf> = self
                .readonly
                .iter()
                .chain(&self.writable)
                .cloned()
                .collect();
            traversable_parents(&mut args, &all, &bound, &[]);
        }
        for path in &self.readonly {
            push(&mut args, "--ro-bind", path, path);
            bound.push(path.clone());
        }
        let mut covered = Vec::new();
        for hidden in &self.hidden {
            if hidden.exists() && bound.iter().any(|b| hidden.starts_with(b)) {
                args.push("--tmpfs".into());
                args.push(hidden.into());
                covered.push(hidden.as_path());
            }
        }
        if self.identity.is_some() {
            traversable_parents(&mut args, &self.writable, &bound, &covered);
        }
        self.network.args(&mut args);
        for path in &self.writable {
            push(&mut args, "--bind", path, path);
        }
        args.push("--chdir".into());
        args.push(cwd.into());
        args
    }

    /// What goes between `bwrap … --` and the command: `setpriv` dropping to the sandbox's
    /// uid, no supplementary groups, no capability left; empty without an identity.
    pub fn entry(&self) -> Vec<OsString> {
        let Some(uid) = self.identity else {
            return Vec::new();
        };
        let id = uid.to_string();
        [
            "setpriv",
            "--reuid",
            &id,
            "--regid",
            &id,
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ]
        .map(OsString::from)
        .to_vec()
    }
}

/// bwrap makes the missing parents of a bind `0700` root's, which a sandbox uid could not
/// pass through; make them `0755` first (they hold nothing but the mount points).
fn traversable_parents(
    args: &mut Vec<OsString>,
    writable: &[PathBuf],
    bound: &[PathBuf],
    covered: &[&Path],
) {
    let mut made: Vec<&Path> = Vec::new();
    for path in writable {
        let mut parents: Vec<&Path> = path.ancestors().skip(1).collect();
        parents.reverse();
        for parent in parents {
            // Present already: the root, /tmp, a bound directory's own contents (unless a
            // tmpfs covers them, whose root is 0755 but whose new directories are not).
            let in_tmpfs = covered
                .iter()
                .any(|c| parent.starts_with(c) && parent != *c);
            let preset = parent == Path::new("/")
                || parent == Path::new("/tmp")
                || (!in_tmpfs && bound.iter().any(|b| parent.starts_with(b)));
            if preset || made.contains(&parent) {
                continue;
            }
            args.extend(["--perms", "0755", "--dir"].map(OsString::from));
            args.push(parent.into());
            made.push(parent);
        }
    }
}

pub(super) fn push(args: &mut Vec<OsString>, flag: &str, a: &Path, b: &Path) {
    args.push(flag.into());
    args.push(a.into());
    args.push(b.into());
}

/// `/etc/resolv.conf` often links into `/run`, which is not bound; bind its target too.
fn resolv_conf_outside_etc() -> Option<PathBuf> {
    let link = Path::new("/etc/resolv.conf");
    if !link.symlink_metadata().ok()?.file_type().is_symlink() {
        return None;
    }
    let target = link.canonicalize().ok()?;
    (!target.starts_with("/etc") && !target.starts_with("/usr")).then_some(target)
}

/// Runs every command under bubblewrap with one sandbox's profile; the toolpack's
/// `run_command` and `exec` both go through it.
#[derive(Debug, Clone)]
pub struct BwrapCommandRunner {
    profile: BwrapProfile,
    home: PathBuf,
    groups: ProcessGroups,
    enclosure: Enclosure,
}

impl BwrapCommandRunner {
    /// A runner confining commands by `profile`, with `home` as `$HOME` (it must be one of
    /// the profile's writable paths), registering process groups in `groups`, each
    /// process started inside `enclosure` (its cgroup, rlimits and uid).
    pub fn new(
        profile: BwrapProfile,
        home: PathBuf,
        groups: ProcessGroups,
        enclosure: Enclosure,
    ) -> Self {
        Self {
            profile,
            home,
            groups,
            enclosure,
        }
    }
}

#[async_trait::async_trait]
impl CommandRunner for BwrapCommandRunner {
    async fn run(
        &self,
        request: CommandRequest,
        cancel: CancellationToken,
    ) -> Result<CommandOutput, ToolError> {
        let mut wrapper = vec![self.profile.bwrap.clone().into_os_string()];
        wrapper.extend(self.profile.args(&request.cwd));
        wrapper.push("--".into());
        wrapper.extend(self.profile.entry());
        wrapper.extend(self.profile.network.command_prefix());
        let (home, groups, enclosure) = (&self.home, &self.groups, &self.enclosure);
        run_shell(wrapper, &request, cancel, home, groups, enclosure).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::egress::NetNs;
    use crate::egress::forward::{self, Forward, ProxyEnv};

    fn profile() -> BwrapProfile {
        BwrapProfile {
            bwrap: "/usr/bin/bwrap".into(),
            writable: vec!["/srv/data/sandboxes/a/workspace".into()],
            readonly: Vec::new(),
            hidden: vec!["/usr/share".into(), "/srv/data".into()],
            network: Network::Shared,
            identity: None,
        }
    }

    fn position(args: &[OsString], flag: &str, value: &str) -> Option<usize> {
        args.windows(2).position(|w| w[0] == flag && w[1] == value)
    }

    #[test]
    fn hides_before_binding_back() {
        let args = profile().args(Path::new("/srv/data/sandboxes/a/workspace"));
        let usr = position(&args, "--ro-bind", "/usr");
        let hidden = position(&args, "--tmpfs", "/usr/share");
        let ws = position(&args, "--bind", "/srv/data/sandboxes/a/workspace");
        assert!(usr < hidden && hidden < ws, "{args:?}");
        // Not under any bound directory, so there is nothing to cover.
        assert_eq!(position(&args, "--tmpfs", "/srv/data"), None);
        assert!(!args.iter().any(|a| a == "--unshare-net"));
        let private = BwrapProfile {
            network: Network::Private {
                sockets: "/srv/data/sandboxes/a/net".into(),
                proxy: Some(ProxyEnv::default()),
                services: Vec::new(),
            },
            ..profile()
        };
        let args = private.args(Path::new("/srv/data/sandboxes/a/workspace"));
        assert!(args.iter().any(|a| a == "--unshare-net"));
        assert!(position(&args, "--ro-bind", "/srv/data/sandboxes/a/net").is_some());
        assert!(position(&args, "HTTPS_PROXY", "http://127.0.0.1:3128").is_some());
        assert_eq!(private.network.command_prefix().len(), 4);
        if let Ok((netns, _)) = NetNs::create(false) {
            let joined = BwrapProfile {
                network: Network::Joined {
                    sockets: "/srv/data/sandboxes/a/net".into(),
                    proxy: Some(ProxyEnv::default()),
                    services: Vec::new(),
                    netns: Arc::new(netns),
                },
                ..profile()
            };
            let args = joined.args(Path::new("/srv/data/sandboxes/a/workspace"));
            assert!(!args.iter().any(|a| a == "--unshare-net"), "{args:?}");
            assert!(position(&args, "--ro-bind", "/srv/data/sandboxes/a/net").is_some());
            assert!(position(&args, "HTTPS_PROXY", "http://127.0.0.1:3128").is_some());
            assert!(joined.network.command_prefix().is_empty());
            assert!(joined.network.netns().is_some());
            let Network::Joined { netns, .. } = joined.network else {
                unreachable!()
            };
            let service = Network::Joined {
                sockets: "/s".into(),
                proxy: Some(ProxyEnv::default()),
                services: vec![Forward::TcpToUnix {
                    port: forward::GATE_PORT,
                    socket: "/run/draftsmith/gate.sock".into(),
                }],
                netns,
            };
            let script = service.command_prefix()[2].to_string_lossy().into_owned();
            assert!(script.contains("TCP-LISTEN:3129"), "{script}");
            assert!(
                !script.contains("3128"),
                "the proxy is served already: {script}"
            );
        }
        assert!(args.iter().any(|a| a == "--die-with-parent"));
        assert_eq!(
            args.last().map(OsString::as_os_str),
            Some("/srv/data/sandboxes/a/workspace".as_ref())
        );
    }

    #[test]
    fn an_identity_switches_inside_and_opens_the_way_to_its_binds() {
        let plain = profile();
        assert!(plain.entry().is_empty());
        assert!(!plain.args(Path::new("/")).iter().any(|a| a == "--cap-add"));
        let own = BwrapProfile {
            identity: Some(1_000_007),
            ..profile()
        };
        let args = own.args(Path::new("/srv/data/sandboxes/a/workspace"));
        for parent in ["/srv", "/srv/data", "/srv/data/sandboxes/a"] {
            let dir = position(&args, "--dir", parent).unwrap_or_else(|| panic!("{parent}"));
            assert_eq!(args[dir - 1], "0755");
        }
        assert_eq!(position(&args, "--dir", "/"), None);
        let caps: Vec<_> = args.windows(2).filter(|w| w[0] == "--cap-add").collect();
        assert_eq!(caps.len(), 3);
        let entry = own.entry();
        assert_eq!(entry[0], "setpriv");
        assert!(
            entry
                .windows(2)
                .any(|w| w[0] == "--reuid" && w[1] == "1000007")
        );
        assert_eq!(entry.last().map(OsString::as_os_str), Some("--".as_ref()));
    }
}
