//! The live preview's side of a chat's sandbox: its dev server started on demand (the
//! sandbox provisioned from the draft first when none is warm), and the workspace brought
//! up to a draft changed through the API so the preview follows the draft.

use draftsmith_core::api::App;
use draftsmith_core::{AppId, ChatSessionId};
use draftsmith_sandbox::{
    DevServerSpec, DevServerStatus, HMR_PATH, LIVE_BASE, SandboxError, SandboxId,
};
use draftsmith_store::StoreError;
use draftsmith_templates::Live;

use crate::Runner;
use crate::sandbox::StoreBlobs;

/// Why the live preview could not be served.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// The sandbox could not be provisioned or its dev server started.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The draft could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The dev server of `template`, told to serve under the live base; `None` for a template
/// without one.
pub fn dev_server_spec(template: &str) -> Option<DevServerSpec> {
    let Live::DevServer(dev) = draftsmith_templates::find(template)?.live else {
        return None;
    };
    Some(DevServerSpec {
        command: dev.command.to_owned(),
        port: dev.port,
        env: vec![
            ("DRAFTSMITH_PREVIEW_BASE".into(), LIVE_BASE.into()),
            ("DRAFTSMITH_PREVIEW_HMR_PATH".into(), HMR_PATH.into()),
        ],
    })
}

impl Runner {
    /// The dev server of `app`'s chat `session`, started when it is not running: a chat
    /// whose sandbox is not warm gets one, refreshed from the draft and its dependencies
    /// linked. `None` when the app's template has no dev server or the controller cannot
    /// serve one to this host.
    pub async fn live_preview(
        &self,
        app: &App,
        session: ChatSessionId,
    ) -> Result<Option<DevServerStatus>, PreviewError> {
        let Some(spec) = dev_server_spec(&app.template) else {
            return Ok(None);
        };
        let controller = self.controller();
        let id = SandboxId::for_chat(session);
        match controller.dev_server(&id, None).await {
            Ok(Some(status)) if status.state != draftsmith_sandbox::DevServerState::Stopped => {
                return Ok(controller.dev_server(&id, Some(&spec)).await?);
            }
            Ok(_) => {}
            Err(SandboxError::NotFound(_)) => {
                let ttl = self.config().sandbox_ttl;
                controller.create(&id, &app.template, ttl).await?;
                let manifest = self.inner.services.store.draft(app.id).await?;
                let blobs = StoreBlobs(self.inner.services.store.clone());
                controller.refresh(&id, &manifest.files, &blobs).await?;
            }
            Err(e) => return Err(e.into()),
        }
        controller.prepare_dependencies(&id).await?;
        Ok(controller.dev_server(&id, Some(&spec)).await?)
    }

    /// After a draft change made through the API (a file written or deleted, a restore):
    /// the warm sandbox of the app's latest chat is refreshed from the draft, unless a run
    /// is working in it (its landing merges the change instead).
    pub async fn follow_draft(&self, app: AppId) {
        if let Err(e) = self.refresh_warm(app).await {
            tracing::warn!(%app, error = %e, "cannot bring the preview's workspace up to the draft");
        }
    }

    async fn refresh_warm(&self, app: AppId) -> Result<(), PreviewError> {
        let store = &self.inner.services.store;
        if store.active_run(app).await?.is_some() {
            return Ok(());
        }
        let Some(run) = store.runs(app, 1, None).await?.into_iter().next() else {
            return Ok(());
        };
        let id = SandboxId::for_chat(run.chat_session_id);
        let controller = self.controller();
        match controller.dev_server(&id, None).await {
            Err(SandboxError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let manifest = store.draft(app).await?;
        let blobs = StoreBlobs(store.clone());
        let refreshed = controller.refresh(&id, &manifest.files, &blobs).await?;
        tracing::debug!(%app, written = refreshed.written, removed = refreshed.removed, "the preview follows the draft");
        Ok(())
    }
}
