//! The engines a runner can dispatch to, by [`EngineKind`]. The runner names no engine: what
//! an engine keeps running between runs (OpenCode's server) is its own business, released
//! through [`Engine::release`] and [`Engine::shutdown`].

use std::path::Path;
use std::sync::Arc;

use draftsmith_core::EngineKind;
use draftsmith_engine::{Engine, NativeEngine};

/// The installed engines; the native one is always there.
#[derive(Clone)]
pub struct Engines {
    installed: Vec<(EngineKind, Arc<dyn Engine>)>,
}

impl Default for Engines {
    fn default() -> Self {
        Self {
            installed: vec![(EngineKind::Native, Arc::new(NativeEngine))],
        }
    }
}

impl Engines {
    /// The native engine, plus `engine` as `kind` when there is one (replacing any engine
    /// of that kind).
    pub fn with(mut self, kind: EngineKind, engine: Option<Arc<dyn Engine>>) -> Self {
        if let Some(engine) = engine {
            self.installed.retain(|(k, _)| *k != kind);
            self.installed.push((kind, engine));
        }
        self
    }

    /// Servers the engines keep running (OpenCode's).
    pub fn servers(&self) -> usize {
        self.installed.iter().map(|(_, e)| e.servers()).sum()
    }

    /// The engine of `kind`, when installed.
    pub fn get(&self, kind: EngineKind) -> Option<&Arc<dyn Engine>> {
        self.installed
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, engine)| engine)
    }

    /// Every engine lets go of what it keeps for `workspace` (its sandbox is stopping):
    /// a chat's runs may have used any of them.
    pub async fn release(&self, workspace: &Path) {
        for (_, engine) in &self.installed {
            engine.release(workspace).await;
        }
    }

    /// Every engine stops what it keeps running (service shutdown).
    pub async fn shutdown(&self) {
        for (_, engine) in &self.installed {
            engine.shutdown().await;
        }
    }
}
