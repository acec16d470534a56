//! Identifiers and roles. Apps use UUIDs; users are named by the operator.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Defines a UUID-backed id type with parsing and display.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Identifies an app; a UUID so ids never collide across instances.
    AppId
);
uuid_id!(
    /// Identifies a run: one agent execution for one prompt.
    RunId
);
uuid_id!(
    /// Identifies a chat session: one conversation of one user on one app.
    ChatSessionId
);
uuid_id!(
    /// Identifies a prompt waiting in an app's queue.
    QueueItemId
);
uuid_id!(
    /// Identifies an uploaded file a prompt can attach.
    UploadId
);
uuid_id!(
    /// Identifies a running draftsmith instance, the owner of the runs it executes.
    InstanceId
);

/// A user's name as given to `draftsmith token create --user NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct UserId(pub String);

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a token may do: admins see and manage everything, builders only their own apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Operator: every app, token management.
    Admin,
    /// App builder: the apps they created.
    Builder,
}

impl Role {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Builder => "builder",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "builder" => Some(Self::Builder),
            _ => None,
        }
    }
}
