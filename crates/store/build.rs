//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the migration
//! directories, but cargo tracks only the files it read, not a file new to them.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
