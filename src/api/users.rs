//! Upstream's user routes (`/api/users`): the signed-in account (a bare object, as upstream's
//! frontend reads it), its teams, deleting it, and reading or changing an account (one's own,
//! or any for an administrator).

use poem::web::Data;
use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::OpenApi;

use super::account_bodies::Done;
use super::caller::{permitted, signed_in};
use super::reply::{Refusal, Reply};
use super::session_cookie::SessionCookie;
use super::tags::ApiTags;
use super::user_bodies::{
    DisplaySettings, Profile, ProfileSummary, ProfileUpdated, UpdateUser, UserTeam, UserTeams,
};
use super::WithCookies;
use crate::auth::over_tls;
use crate::db::models::{User, UserId};
use crate::services::user_admin::{valid_username, Actor, ProfileChange};
use crate::services::{TeamService, UserService};
use crate::state::AppState;

/// Upstream's answer without a live session.
pub const AUTHENTICATION_REQUIRED: &str = "Authentication required";

/// The permission that lets an account read and change others (upstream's
/// `requireOwnershipOrAdmin`).
const ADMIN_PERMISSION: &str = "system.admin";

/// A `user-display` setting, `true` unless set otherwise.
async fn display_flag(state: &AppState, key: &str) -> bool {
    !matches!(state.settings.get_bool(key).await, Ok(Some(false)))
}

/// `user` itself, or an account `user` administers: 403 otherwise.
async fn owner_or_admin(state: &AppState, user: &User, target: &str) -> Result<bool, Refusal> {
    if user.id.as_str() == target {
        return Ok(false);
    }
    match permitted(state, user, ADMIN_PERMISSION).await {
        Ok(()) => Ok(true),
        Err(Refusal::Forbidden(_)) => Err(Refusal::Forbidden(super::account_bodies::Failure::new(
            "Can only access your own resources or requires admin permissions",
        ))),
        Err(other) => Err(other),
    }
}

/// User operations.
pub struct UsersApi;

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// The signed-in user
    ///
    /// The account of the `session` cookie as a bare object (upstream's shape), with the
    /// header options of the frontend. A session that was signed out, has expired or whose
    /// user was deleted answers 401 at once, in every process.
    #[oai(
        path = "/api/users/me",
        method = "get",
        operation_id = "getCurrentUser"
    )]
    async fn me(&self, state: Data<&AppState>, session: SessionCookie) -> Reply<Profile> {
        let user = match signed_in(&state, &session).await {
            Ok(user) => user,
            Err(r) => return r.into(),
        };
        let mut profile = Profile::from(&user);
        profile.user_display_settings = Some(DisplaySettings {
            header_show_discord: display_flag(&state, "user-display.header_show_discord").await,
            header_show_feedback: display_flag(&state, "user-display.header_show_feedback").await,
        });
        Reply::Ok(Json(profile))
    }

    /// The signed-in user's teams
    ///
    /// Every team the account belongs to, with its role and whether it owns it; the default
    /// team first.
    #[oai(
        path = "/api/users/me/teams",
        method = "get",
        operation_id = "getCurrentUserTeams"
    )]
    async fn my_teams(&self, state: Data<&AppState>, session: SessionCookie) -> Reply<UserTeams> {
        let result = async {
            let user = signed_in(&state, &session).await?;
            teams_of(&state, &user.id).await
        }
        .await;
        result.into()
    }

    /// Delete the signed-in account
    ///
    /// Deletes the account with its sessions, memberships and default team, and removes the
    /// session cookie. Refused while it owns other teams (`owned_teams` lists them) and for
    /// the last global administrator.
    #[oai(
        path = "/api/users/me",
        method = "delete",
        operation_id = "deleteCurrentUser"
    )]
    async fn delete_me(
        &self,
        state: Data<&AppState>,
        request: &Request,
        session: SessionCookie,
    ) -> WithCookies<Reply<Done>> {
        let result = async {
            let user = signed_in(&state, &session).await?;
            let users = UserService::new(state.database.clone());
            users.delete_account(&user.id, &user.id, false).await?;
            tracing::info!(user = %user.id, "account deleted by its owner");
            Ok::<_, Refusal>(Done {
                success: true,
                message: "Your account has been successfully deleted.".into(),
            })
        }
        .await;
        let cookies = match &result {
            Ok(_) => vec![state.accounts.cookie().clear(over_tls(request))],
            Err(_) => Vec::new(),
        };
        WithCookies(result.into(), cookies)
    }

    /// An account
    ///
    /// One's own, or any for a global administrator.
    #[oai(path = "/api/users/:id", method = "get", operation_id = "getUser")]
    async fn get(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
    ) -> Reply<Profile> {
        let result = async {
            let user = signed_in(&state, &session).await?;
            if !owner_or_admin(&state, &user, &id.0).await? {
                return Ok(Profile::from(&user));
            }
            let users = UserService::new(state.database.clone());
            match users.get_user(&UserId::from(id.0.as_str())).await? {
                Some(found) => Ok(Profile::from(&found)),
                None => Err(Refusal::NotFound(super::account_bodies::Failure::new(
                    "User not found",
                ))),
            }
        }
        .await;
        result.into()
    }

    /// Change an account
    ///
    /// One's own, or any for a global administrator: username (3 to 30 of `a-zA-Z0-9_.-`,
    /// unique ignoring case), email address (stored in lower case, unique), names, and the
    /// global role (not one's own). The last global administrator cannot be demoted.
    #[oai(path = "/api/users/:id", method = "put", operation_id = "updateUser")]
    async fn update(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
        body: super::StrictJson<UpdateUser>,
    ) -> Reply<ProfileUpdated> {
        let result = async {
            let user = signed_in(&state, &session).await?;
            let admin = owner_or_admin(&state, &user, &id.0).await?
                || permitted(&state, &user, ADMIN_PERMISSION).await.is_ok();
            let body = body.0;
            if body.username.is_none()
                && body.email.is_none()
                && body.first_name.is_none()
                && body.last_name.is_none()
                && body.role_id.is_none()
            {
                return Err(Refusal::bad_request("Validation error").with_message(
                    "At least one of `username`, `email`, `first_name`, `last_name` or `role_id` is required.",
                ));
            }
            if body.username.as_deref().is_some_and(|u| !valid_username(u)) {
                return Err(Refusal::bad_request("Validation error").with_message(
                    "`username` must be 3 to 30 characters of a-z, A-Z, 0-9, _, . and -.",
                ));
            }
            if body.email.as_deref().is_some_and(|e| !crate::auth::is_email(e)) {
                return Err(Refusal::bad_request("Validation error")
                    .with_message("`email` must be an email address."));
            }
            let users = UserService::new(state.database.clone());
            let updated = users
                .update_profile(
                    &Actor {
                        id: user.id.clone(),
                        admin,
                    },
                    &UserId::from(id.0.as_str()),
                    ProfileChange {
                        username: body.username,
                        email: body.email,
                        first_name: body.first_name.map(Some),
                        last_name: body.last_name.map(Some),
                        role_id: body.role_id,
                    },
                )
                .await?;
            tracing::info!(user = %updated.id, by = %user.id, "profile changed");
            Ok(ProfileUpdated {
                success: true,
                user: ProfileSummary::from(&updated),
                message: "Profile updated successfully.".into(),
            })
        }
        .await;
        result.into()
    }

    /// An account's teams
    ///
    /// One's own, or any account's for a global administrator.
    #[oai(
        path = "/api/users/:id/teams",
        method = "get",
        operation_id = "getUserTeams"
    )]
    async fn teams(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
    ) -> Reply<UserTeams> {
        let result = async {
            let user = signed_in(&state, &session).await?;
            if !owner_or_admin(&state, &user, &id.0).await? {
                return teams_of(&state, &user.id).await;
            }
            let target = UserId::from(id.0.as_str());
            let users = UserService::new(state.database.clone());
            if users.get_user(&target).await?.is_none() {
                return Err(Refusal::NotFound(super::account_bodies::Failure::new(
                    "User not found",
                )));
            }
            teams_of(&state, &target).await
        }
        .await;
        result.into()
    }
}

async fn teams_of(state: &AppState, user: &UserId) -> Result<UserTeams, Refusal> {
    let teams = TeamService::new(state.database.clone())
        .teams_of_member(user)
        .await?;
    Ok(UserTeams {
        success: true,
        teams: teams.iter().map(|t| UserTeam::of(t, user)).collect(),
    })
}
