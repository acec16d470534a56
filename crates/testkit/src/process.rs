//! The real `draftsmith` binary as a child process: for restarts, kills and several
//! instances on one database.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{ADMIN_TOKEN, ApiClient, TestDb};

/// A `draftsmith serve` process; killed when dropped.
pub struct ServerProcess {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// Lines it printed on stdout before it was ready.
    pub banner: Vec<String>,
    child: Child,
}

impl ServerProcess {
    /// Starts `binary serve` on `db` with the test admin token.
    pub async fn start(binary: &Path, db: &TestDb) -> Self {
        Self::start_with_env(binary, db, &[("DRAFTSMITH_ADMIN_TOKEN", ADMIN_TOKEN)]).await
    }

    /// Starts `binary serve` on `db` with extra environment variables.
    pub async fn start_with_env(binary: &Path, db: &TestDb, env: &[(&str, &str)]) -> Self {
        Self::start_with_args(binary, db, &[], env).await
    }

    /// Starts `binary serve ARGS…` on `db` with extra environment variables.
    pub async fn start_with_args(
        binary: &Path,
        db: &TestDb,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DRAFTSMITH_LISTEN", "127.0.0.1:0")
            .env("DRAFTSMITH_DATA_DIR", db.dir.path())
            .env("DATABASE_URL", db.database_url_env())
            .env("RUST_LOG", "warn")
            .current_dir(db.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        let base_url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("draftsmith listening on ") {
                    return url.to_owned();
                }
                banner.push(line);
            }
            panic!("draftsmith exited before listening; printed {banner:?}");
        })
        .await
        .expect("draftsmith did not start listening within 30 s");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            base_url,
            banner,
            child,
        }
    }

    /// A client signed in as the bootstrap admin.
    pub fn admin(&self) -> ApiClient {
        ApiClient::new(&self.base_url, Some(ADMIN_TOKEN))
    }

    /// Sends a signal (e.g. `HUP`) to the process.
    pub async fn signal(&self, name: &str) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .arg(format!("-{name}"))
                .arg(pid.to_string())
                .status()
                .await;
        }
    }

    /// Sends SIGTERM and waits for the exit status (graceful shutdown).
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("draftsmith did not stop within 20 s of SIGTERM")
            .unwrap()
    }

    /// Waits up to `within` for the process to end by itself (a crash hook, for example).
    pub async fn wait_for_exit(mut self, within: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("draftsmith did not exit in time")
            .unwrap()
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}
