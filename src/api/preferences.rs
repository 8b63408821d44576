//! Upstream's preference routes (`/api/users/me/preferences`): the dashboard's walkthrough
//! and notification choices. A key never written reads as its default; an unknown key or a
//! value of another type is refused as bad input (upstream answered 500).

use std::collections::BTreeMap;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::{Object, OpenApi};
use serde_json::Value;

use super::account_bodies::Done;
use super::caller::with_permission;
use super::reply::{Refusal, Reply};
use super::session_cookie::SessionCookie;
use super::tags::ApiTags;
use crate::services::preferences::Preferences;
use crate::state::AppState;

/// `{success, preferences}`.
#[derive(Debug, Clone, Object)]
pub struct PreferencesEnvelope {
    /// Always `true`.
    pub success: bool,
    /// Every preference, by key.
    pub preferences: BTreeMap<String, Value>,
}

/// `{success, value}`.
#[derive(Debug, Clone, Object)]
pub struct PreferenceEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The value (a boolean or a string).
    pub value: Value,
}

/// `{success, should_show_walkthrough}`.
#[derive(Debug, Clone, Object)]
pub struct WalkthroughEnvelope {
    /// Always `true`.
    pub success: bool,
    /// Neither completed nor cancelled.
    pub should_show_walkthrough: bool,
}

/// `POST /api/users/me/preferences`: one or more declared preferences.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct SetPreferences {
    /// The walkthrough was completed.
    pub walkthrough_completed: Option<bool>,
    /// The walkthrough was cancelled.
    pub walkthrough_cancelled: Option<bool>,
    /// Email notifications.
    pub email_notifications_enabled: Option<bool>,
    /// Browser notifications.
    pub browser_notifications_enabled: Option<bool>,
    /// Acknowledged notification ids, comma-separated.
    pub notification_acknowledgments: Option<String>,
    /// Beta features.
    pub beta_features_enabled: Option<bool>,
}

/// `PUT /api/users/me/preferences/:key`.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct SetPreference {
    /// A boolean for the boolean preferences, a string for the others.
    pub value: Value,
}

/// `POST /api/users/me/preferences/notifications/acknowledge`.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct Acknowledge {
    /// The notification's id.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub notification_id: String,
}

async fn set(
    state: &AppState,
    session: &SessionCookie,
    values: Vec<(String, Value)>,
    message: String,
) -> Result<Done, Refusal> {
    let user = with_permission(state, session, "preferences.edit").await?;
    Preferences::new(state.database.clone())
        .set_many(&user.id, &values)
        .await?;
    Ok(Done {
        success: true,
        message,
    })
}

/// Preference operations.
pub struct PreferencesApi;

#[OpenApi(tag = "ApiTags::Users")]
impl PreferencesApi {
    /// The signed-in user's preferences
    #[oai(
        path = "/api/users/me/preferences",
        method = "get",
        operation_id = "getPreferences"
    )]
    async fn all(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
    ) -> Reply<PreferencesEnvelope> {
        let result = async {
            let user = with_permission(&state, &session, "preferences.view").await?;
            let preferences = Preferences::new(state.database.clone())
                .all(&user.id)
                .await?;
            Ok::<_, Refusal>(PreferencesEnvelope {
                success: true,
                preferences,
            })
        }
        .await;
        result.into()
    }

    /// Set preferences
    ///
    /// One or more of the declared keys, each of its type; all are stored or none.
    #[oai(
        path = "/api/users/me/preferences",
        method = "post",
        operation_id = "setPreferences"
    )]
    async fn set_many(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        body: super::StrictJson<SetPreferences>,
    ) -> Reply<Done> {
        let b = body.0;
        let mut values: Vec<(String, Value)> = Vec::new();
        for (key, value) in [
            (
                "walkthrough_completed",
                b.walkthrough_completed.map(Value::Bool),
            ),
            (
                "walkthrough_cancelled",
                b.walkthrough_cancelled.map(Value::Bool),
            ),
            (
                "email_notifications_enabled",
                b.email_notifications_enabled.map(Value::Bool),
            ),
            (
                "browser_notifications_enabled",
                b.browser_notifications_enabled.map(Value::Bool),
            ),
            (
                "notification_acknowledgments",
                b.notification_acknowledgments.map(Value::String),
            ),
            (
                "beta_features_enabled",
                b.beta_features_enabled.map(Value::Bool),
            ),
        ] {
            if let Some(value) = value {
                values.push((key.to_owned(), value));
            }
        }
        if values.is_empty() {
            return Refusal::bad_request("Validation error")
                .with_message("At least one preference is required.")
                .into();
        }
        set(
            &state,
            &session,
            values,
            "Preferences updated successfully".into(),
        )
        .await
        .into()
    }

    /// One preference
    #[oai(
        path = "/api/users/me/preferences/:key",
        method = "get",
        operation_id = "getPreference"
    )]
    async fn one(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        key: Path<String>,
    ) -> Reply<PreferenceEnvelope> {
        let result = async {
            let user = with_permission(&state, &session, "preferences.view").await?;
            let value = Preferences::new(state.database.clone())
                .one(&user.id, &key.0)
                .await?;
            Ok::<_, Refusal>(PreferenceEnvelope {
                success: true,
                value,
            })
        }
        .await;
        result.into()
    }

    /// Set one preference
    #[oai(
        path = "/api/users/me/preferences/:key",
        method = "put",
        operation_id = "setPreference"
    )]
    async fn set_one(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        key: Path<String>,
        body: super::StrictJson<SetPreference>,
    ) -> Reply<Done> {
        let message = format!("Preference '{}' updated successfully", key.0);
        set(&state, &session, vec![(key.0, body.0.value)], message)
            .await
            .into()
    }

    /// Mark the walkthrough completed
    #[oai(
        path = "/api/users/me/preferences/walkthrough/complete",
        method = "post",
        operation_id = "completeWalkthrough"
    )]
    async fn complete(&self, state: Data<&AppState>, session: SessionCookie) -> Reply<Done> {
        let values = vec![("walkthrough_completed".to_owned(), Value::Bool(true))];
        set(
            &state,
            &session,
            values,
            "Walkthrough marked as completed".into(),
        )
        .await
        .into()
    }

    /// Mark the walkthrough cancelled
    #[oai(
        path = "/api/users/me/preferences/walkthrough/cancel",
        method = "post",
        operation_id = "cancelWalkthrough"
    )]
    async fn cancel(&self, state: Data<&AppState>, session: SessionCookie) -> Reply<Done> {
        let values = vec![("walkthrough_cancelled".to_owned(), Value::Bool(true))];
        set(
            &state,
            &session,
            values,
            "Walkthrough marked as cancelled".into(),
        )
        .await
        .into()
    }

    /// Whether to show the walkthrough
    #[oai(
        path = "/api/users/me/preferences/walkthrough/status",
        method = "get",
        operation_id = "walkthroughStatus"
    )]
    async fn walkthrough(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
    ) -> Reply<WalkthroughEnvelope> {
        let result = async {
            let user = with_permission(&state, &session, "preferences.view").await?;
            let all = Preferences::new(state.database.clone())
                .all(&user.id)
                .await?;
            let set = |k: &str| all.get(k) == Some(&Value::Bool(true));
            Ok::<_, Refusal>(WalkthroughEnvelope {
                success: true,
                should_show_walkthrough: !set("walkthrough_completed")
                    && !set("walkthrough_cancelled"),
            })
        }
        .await;
        result.into()
    }

    /// Acknowledge a notification
    #[oai(
        path = "/api/users/me/preferences/notifications/acknowledge",
        method = "post",
        operation_id = "acknowledgeNotification"
    )]
    async fn acknowledge(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        body: super::StrictJson<Acknowledge>,
    ) -> Reply<Done> {
        let result = async {
            let user = with_permission(&state, &session, "preferences.edit").await?;
            let id = body.0.notification_id;
            if id.contains(',') {
                return Err(Refusal::bad_request("Validation error")
                    .with_message("`notification_id` cannot hold a comma."));
            }
            Preferences::new(state.database.clone())
                .acknowledge(&user.id, &id)
                .await?;
            Ok(Done {
                success: true,
                message: format!("Notification '{id}' acknowledged successfully"),
            })
        }
        .await;
        result.into()
    }
}
