//! The app templates built into the draftsmith binary.
//!
//! Each template is a directory under `files/<id>/`, embedded at compile time
//! so that the binary can start a new app without any files on disk.

use include_dir::{Dir, DirEntry, include_dir};

/// Every template's files, embedded so the binary needs nothing on disk.
static FILES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/files");

/// The templates this binary ships, in the order they are offered.
static TEMPLATES: &[Template] = &[
    Template {
        id: "vite-react",
        description: "A Vite 7 + React 19 app in plain JSX with a counter.",
        verify: &["npm run build"],
        publish: Some(Build {
            command: "npm run build",
            output: "dist",
        }),
        live: Live::DevServer(DevServer {
            command: "exec node node_modules/vite/bin/vite.js",
            port: 5173,
        }),
    },
    Template {
        id: "static",
        description: "A plain HTML, CSS and JavaScript page with no build step.",
        verify: &["node --check script.js"],
        publish: None,
        live: Live::Workspace,
    },
];

/// An app template that a new project can start from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Stable name used to pick the template and to find its files.
    pub id: &'static str,
    /// One line shown to people choosing a template.
    pub description: &'static str,
    /// Shell commands, run in the app's directory, that check the app still works after edits.
    pub verify: &'static [&'static str],
    /// How a release is built; `None` publishes the app's own files as they are.
    pub publish: Option<Build>,
    /// How the builder's live preview serves the app while it is being edited.
    pub live: Live,
}

/// What the live preview of a template's app is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// A dev server run in the app's sandbox, with hot reload.
    DevServer(DevServer),
    /// The sandbox's workspace files as they are, served by draftsmith (no build step).
    Workspace,
}

/// A template's dev server: a long-lived process of the sandbox, told where it is served
/// through `DRAFTSMITH_PREVIEW_BASE`, `DRAFTSMITH_PREVIEW_HMR_PATH`,
/// `DRAFTSMITH_PREVIEW_PORT` and `DRAFTSMITH_PREVIEW_CLIENT_PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevServer {
    /// Shell command run in the app's directory, dependencies linked first.
    pub command: &'static str,
    /// The port it listens on inside the sandbox's private network (`DRAFTSMITH_PREVIEW_PORT`).
    pub port: u16,
}

/// A template's release build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Build {
    /// Shell command run in the app's directory, dependencies linked first.
    pub command: &'static str,
    /// The directory it writes the site into, relative to the app.
    pub output: &'static str,
}

/// Lists every built-in template so callers can offer the choice.
pub fn all() -> &'static [Template] {
    TEMPLATES
}

/// Looks a template up by id so a request can name the one it wants.
pub fn find(id: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.id == id)
}

impl Template {
    /// Returns (relative `/`-separated path, contents) for every file, sorted by path, so a new app can be written out.
    pub fn files(&self) -> Vec<(String, &'static [u8])> {
        let mut out = Vec::new();
        if let Some(dir) = FILES.get_dir(self.id) {
            collect(dir, self.id, &mut out);
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// Walks `dir` recursively, pushing each file with its path relative to `root`.
fn collect(dir: &Dir<'static>, root: &str, out: &mut Vec<(String, &'static [u8])>) {
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(sub) => collect(sub, root, out),
            DirEntry::File(file) => {
                let full = file.path().to_string_lossy().replace('\\', "/");
                let rel = full
                    .strip_prefix(root)
                    .and_then(|p| p.strip_prefix('/'))
                    .unwrap_or(&full)
                    .to_owned();
                out.push((rel, file.contents()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn paths(id: &str) -> Vec<String> {
        find(id)
            .unwrap()
            .files()
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    }

    fn write_template(id: &str, dest: &Path) {
        for (path, contents) in find(id).unwrap().files() {
            let target = dest.join(&path);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(&target, contents).unwrap();
        }
    }

    fn run(dir: &Path, program: &str, args: &[&str]) {
        let output = Command::new(program)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("failed to start {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }

    #[test]
    fn both_templates_are_found() {
        assert_eq!(all().len(), 2);
        for id in ["vite-react", "static"] {
            let t = find(id).unwrap();
            assert_eq!(t.id, id);
            assert!(!t.description.is_empty());
            assert!(!t.verify.is_empty());
        }
        assert_eq!(find("vite-react").unwrap().verify, &["npm run build"]);
        assert_eq!(find("static").unwrap().verify, &["node --check script.js"]);
    }

    #[test]
    fn unknown_id_is_none() {
        assert!(find("nope").is_none());
        assert!(find("").is_none());
    }

    #[test]
    fn vite_react_has_expected_files() {
        let expected = [
            ".gitignore",
            "index.html",
            "package-lock.json",
            "package.json",
            "src/App.jsx",
            "src/index.css",
            "src/main.jsx",
            "vite.config.js",
        ];
        assert_eq!(paths("vite-react"), expected);
    }

    #[test]
    fn static_has_expected_files() {
        assert_eq!(paths("static"), ["index.html", "script.js", "styles.css"]);
    }

    #[test]
    fn files_are_sorted_and_show_my_app() {
        for t in all() {
            let files = t.files();
            let mut sorted: Vec<_> = files.iter().map(|(p, _)| p.clone()).collect();
            sorted.sort();
            assert_eq!(
                files.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
                sorted
            );
            let index = files.iter().find(|(p, _)| p == "index.html").unwrap().1;
            let html = std::str::from_utf8(index).unwrap();
            assert!(html.contains("<title>My App</title>"), "{}", t.id);
        }
        let app = find("vite-react").unwrap().files();
        let app = app.iter().find(|(p, _)| p == "src/App.jsx").unwrap().1;
        assert!(
            std::str::from_utf8(app)
                .unwrap()
                .contains("<h1>My App</h1>")
        );
        let page = find("static").unwrap().files();
        let page = page.iter().find(|(p, _)| p == "index.html").unwrap().1;
        assert!(
            std::str::from_utf8(page)
                .unwrap()
                .contains("<h1>My App</h1>")
        );
    }

    #[test]
    fn no_build_output_is_embedded() {
        for t in all() {
            for (path, _) in t.files() {
                assert!(!path.contains('\\'), "{path}");
                for bad in ["node_modules", "dist"] {
                    assert!(
                        !path.split('/').any(|part| part == bad),
                        "{} embeds {path}",
                        t.id
                    );
                }
            }
        }
    }

    #[test]
    fn vite_react_template_builds_with_npm() {
        let dir = tempfile::tempdir().unwrap();
        write_template("vite-react", dir.path());
        run(dir.path(), "npm", &["ci", "--no-audit", "--no-fund"]);
        run(dir.path(), "npm", &["run", "build"]);
        assert!(dir.path().join("dist/index.html").is_file());
    }

    /// `GET path` from a server on 127.0.0.1:`port`, the body as text; `None` until it
    /// answers 200.
    fn get(port: u16, path: &str) -> Option<String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let (head, body) = answer.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
    }

    /// A child process killed when the test ends, passed or not.
    struct KillOnDrop(std::process::Child);

    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Each optimized dependency `module` imports, with its `?v=` version.
    fn dep_versions(module: &str) -> Vec<(String, String)> {
        module
            .split("/node_modules/.vite/deps/")
            .skip(1)
            .filter_map(|rest| {
                let (file, rest) = rest.split_once("?v=")?;
                let version = rest.chars().take_while(char::is_ascii_alphanumeric);
                Some((file.to_owned(), version.collect()))
            })
            .collect()
    }

    /// The dev server optimizes every dependency the app imports before its first page
    /// load, the JSX runtime too: finding one on the first load makes Vite optimize again
    /// and reload the page, whose modules then import two versions of React.
    #[test]
    fn vite_react_dev_server_serves_one_react_from_the_first_load() {
        let dir = tempfile::tempdir().unwrap();
        write_template("vite-react", dir.path());
        run(dir.path(), "npm", &["ci", "--no-audit", "--no-fund"]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let _vite = KillOnDrop(
            Command::new("node")
                .args(["node_modules/vite/bin/vite.js"])
                .env("DRAFTSMITH_PREVIEW_PORT", port.to_string())
                .current_dir(dir.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        // The page loads a while after the dev server optimized what its start-up scan
        // found, as in the builder's preview, which starts it with the sandbox (a page
        // asked for sooner holds the first optimization until its modules are crawled).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let optimized = dir.path().join("node_modules/.vite/deps/_metadata.json");
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || !optimized.is_file() {
            assert!(std::time::Instant::now() < deadline, "vite is not up");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::thread::sleep(std::time::Duration::from_secs(3));
        let page = get(port, "/").unwrap();
        assert!(page.contains("/src/main.jsx"), "{page}");
        // The browser's order: the entry, then the component it imports (after the
        // entry's transform has had time to find what it imports).
        let main = get(port, "/src/main.jsx").unwrap();
        std::thread::sleep(std::time::Duration::from_secs(1));
        let app = get(port, "/src/App.jsx").unwrap();
        let again = get(port, "/src/main.jsx").unwrap();
        // Each dependency has one version wherever and whenever it is imported.
        let mut versions = std::collections::BTreeMap::<_, std::collections::BTreeSet<_>>::new();
        for (file, version) in [&main, &app, &again].iter().flat_map(|m| dep_versions(m)) {
            versions.entry(file).or_default().insert(version);
        }
        assert!(versions.contains_key("react.js"), "{main}");
        assert!(versions.contains_key("react_jsx-dev-runtime.js"), "{main}");
        for (file, seen) in &versions {
            assert_eq!(
                seen.len(),
                1,
                "{file} in versions {seen:?}:\n{main}\n{app}\n{again}"
            );
        }
    }

    #[test]
    fn static_template_script_passes_node_check() {
        let dir = tempfile::tempdir().unwrap();
        write_template("static", dir.path());
        run(dir.path(), "node", &["--check", "script.js"]);
    }
}
