//! The admin API: global settings (`/api/settings`) and the job queue (`/api/admin/jobs`),
//! upstream's routes behind the `global_admin` session. Anonymous callers get upstream's 401
//! `Authentication required`, signed-in users without the role its 403 `Insufficient
//! permissions` naming the role. Reads go to the primary, so a client that changed something
//! reads its change on its next request.

/// The signed-in administrator, or the gate's refusal returned from the operation.
macro_rules! as_admin {
    ($state:expr, $session:expr) => {
        match $crate::api::admin::administrator(&$state, &$session).await {
            Ok(user) => user,
            Err(gate) => return gate.into(),
        }
    };
}

pub mod jobs;
mod jobs_bodies;
pub mod people;
mod people_bodies;
mod responses;
pub mod settings;
mod settings_bodies;

use poem_openapi::types::Example;
use poem_openapi::Object;

use super::account_bodies::Failure;
use super::auth::Answer;
use super::session_cookie::SessionCookie;
use super::users::AUTHENTICATION_REQUIRED;
use crate::auth::is_admin;
use crate::db::models::User;
use crate::state::AppState;

pub use responses::{Read, Write};

/// The role every admin route requires.
pub const REQUIRED_ROLE: &str = "global_admin";

/// A signed-in caller without the role (upstream's 403 shape).
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(example)]
pub struct Denied {
    /// Always `false`.
    pub success: bool,
    /// `Insufficient permissions`.
    pub error: String,
    /// `global_admin`.
    pub required_role: String,
}

impl poem_openapi::types::Example for Denied {
    fn example() -> Self {
        Self {
            success: false,
            error: "Insufficient permissions".into(),
            required_role: REQUIRED_ROLE.into(),
        }
    }
}

/// Why the gate did not open.
pub(crate) enum Gate {
    /// No live session: 401.
    Unauthenticated(Failure),
    /// Signed in without the role: 403.
    Forbidden(Denied),
    /// The check itself failed.
    Failed(Answer),
}

/// The signed-in global administrator, or why not.
pub(crate) async fn administrator(state: &AppState, session: &SessionCookie) -> Result<User, Gate> {
    match state.accounts.user_of(&session.0).await {
        Ok(Some(user)) if is_admin(&user) => Ok(user),
        Ok(Some(_)) => Err(Gate::Forbidden(Denied::example())),
        Ok(None) => Err(Gate::Unauthenticated(Failure::new(AUTHENTICATION_REQUIRED))),
        Err(e) => Err(Gate::Failed(Answer::from(e))),
    }
}
