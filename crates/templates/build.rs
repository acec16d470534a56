//! Rebuilds the crate when anything under `files/` changes, because
//! `include_dir!` alone does not notice files that are added or removed.

fn main() {
    println!("cargo:rerun-if-changed=files");
}
