//! Who calls: the account of the session cookie, and what its global role grants (the
//! `roles` table, as upstream reads it).

use super::reply::Refusal;
use super::session_cookie::SessionCookie;
use crate::auth::is_admin;
use crate::db::models::User;
use crate::services::RoleService;
use crate::state::AppState;

/// The signed-in account: 401 `Authentication required` without a live session.
pub async fn signed_in(state: &AppState, session: &SessionCookie) -> Result<User, Refusal> {
    match state.accounts.user_of(&session.0).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(Refusal::unauthenticated()),
        Err(e) => Err(e.into()),
    }
}

/// 403 `Insufficient permissions` unless `user`'s global role grants `permission`.
pub async fn permitted(state: &AppState, user: &User, permission: &str) -> Result<(), Refusal> {
    let Some(role) = &user.role_id else {
        return Err(Refusal::lacks(permission));
    };
    let roles = RoleService::new(state.database.clone());
    if roles.has_permission(role, permission).await? {
        Ok(())
    } else {
        Err(Refusal::lacks(permission))
    }
}

/// The signed-in account if it holds `permission`.
pub async fn with_permission(
    state: &AppState,
    session: &SessionCookie,
    permission: &str,
) -> Result<User, Refusal> {
    let user = signed_in(state, session).await?;
    permitted(state, &user, permission).await?;
    Ok(user)
}

/// The signed-in global administrator: 403 `Insufficient permissions` (naming the role)
/// for anyone else.
pub async fn administrator(state: &AppState, session: &SessionCookie) -> Result<User, Refusal> {
    let user = signed_in(state, session).await?;
    if is_admin(&user) {
        Ok(user)
    } else {
        let mut failure = super::account_bodies::Failure::new("Insufficient permissions");
        failure.required_permission = None;
        Err(Refusal::Forbidden(failure.requiring_role(
            crate::api::admin::REQUIRED_ROLE,
            user.role_id.as_ref().map(|r| r.as_str()),
        )))
    }
}
