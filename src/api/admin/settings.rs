//! `/api/settings`: upstream's global settings routes, for the global administrator, with
//! its defects fixed: secrets are masked unless revealed (each reveal logged with key and
//! user, never the value), a masked value sent back changes nothing, an encrypted setting
//! stays encrypted unless encryption is turned off explicitly, and every write reaches
//! every process's cache at commit.

use chrono::Utc;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::OpenApi;
use secrecy::{ExposeSecret, SecretString};
use tracing::{error, info};

use super::settings_bodies::{
    scalar_text, BulkEnvelope, BulkError, BulkItem, BulkSettings, CategoriesEnvelope,
    CreateSetting, GroupBody, GroupEnvelope, GroupsEnvelope, HealthData, HealthEnvelope, Removed,
    SearchSettings, SettingBody, SettingEnvelope, SettingsEnvelope, UpdateSetting, MASK,
};
use super::{Read, Write};
use crate::api::account_bodies::Failure;
use crate::api::session_cookie::SessionCookie;
use crate::api::tags::ApiTags;
use crate::db::models::User;
use crate::settings::error::ROTATED_NOTICE;
use crate::settings::{
    GlobalSettings, NewSetting, RowFilter, SettingChange, SettingRow, SettingType, SettingsError,
};
use crate::state::AppState;

/// How a settings failure is answered.
enum Refusal {
    BadRequest(Failure),
    NotFound(Failure),
    Conflict(Failure),
    Failed(Failure),
    Unavailable(Failure),
}

impl From<SettingsError> for Refusal {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::NotFound(_) => Self::NotFound(Failure::new("Setting not found")),
            SettingsError::AlreadyExists(_) => Self::Conflict(Failure::new(
                "Setting with this key already exists. Use PUT to update.",
            )),
            SettingsError::InvalidKey(_)
            | SettingsError::InvalidValue { .. }
            | SettingsError::GroupNotFound(_)
            | SettingsError::Declared { .. } => {
                Self::BadRequest(Failure::new("Validation error").with_message(e.to_string()))
            }
            SettingsError::SecretRotated { .. } => Self::Unavailable(
                Failure::new("Encryption secret rotated").with_message(ROTATED_NOTICE),
            ),
            SettingsError::Db(db) => {
                let body = crate::api::ErrorBody::from_db(&db);
                Self::Unavailable(Failure::new(body.error).with_message(body.message))
            }
            other => {
                error!(error = %other, "settings operation failed");
                Self::Failed(Failure::new("Internal server error"))
            }
        }
    }
}

impl<T: ToJSON + Type> From<Refusal> for Read<T> {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::BadRequest(f) => Self::BadRequest(Json(f)),
            Refusal::NotFound(f) => Self::NotFound(Json(f)),
            Refusal::Conflict(f) | Refusal::Failed(f) => Self::Failed(Json(f)),
            Refusal::Unavailable(f) => Self::Unavailable(Json(f)),
        }
    }
}

impl<T: ToJSON + Type> From<Refusal> for Write<T> {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::BadRequest(f) => Self::BadRequest(Json(f)),
            Refusal::NotFound(f) => Self::NotFound(Json(f)),
            Refusal::Conflict(f) => Self::Conflict(Json(f)),
            Refusal::Failed(f) => Self::Failed(Json(f)),
            Refusal::Unavailable(f) => Self::Unavailable(Json(f)),
        }
    }
}

/// `row` as shown to `user`: encrypted values masked unless `reveal` (then logged).
fn shown(
    settings: &GlobalSettings,
    row: &SettingRow,
    reveal: bool,
    user: &User,
) -> Result<SettingBody, Refusal> {
    shown_after(settings, row, false, reveal, user)
}

/// [`shown`] for a row a change just `decrypted` (stored in plaintext from now on): its
/// value is a secret revealed as well, masked unless `reveal`; the change is logged as a
/// reveal either way.
fn shown_after(
    settings: &GlobalSettings,
    row: &SettingRow,
    decrypted: bool,
    reveal: bool,
    user: &User,
) -> Result<SettingBody, Refusal> {
    if decrypted {
        info!(key = %row.key, user = %user.id, "revealed an encrypted setting: now stored in plaintext");
        if !reveal {
            return Ok(SettingBody::new(row, MASK.to_owned()));
        }
    }
    let value = if row.is_encrypted && !reveal {
        MASK.to_owned()
    } else {
        let plain = settings.plaintext(row)?;
        if row.is_encrypted {
            info!(key = %row.key, user = %user.id, "revealed an encrypted setting");
        }
        plain.expose_secret().to_owned()
    };
    Ok(SettingBody::new(row, value))
}

fn all_shown(
    settings: &GlobalSettings,
    rows: &[SettingRow],
    reveal: bool,
    user: &User,
) -> Result<Vec<SettingBody>, Refusal> {
    rows.iter()
        .map(|r| shown(settings, r, reveal, user))
        .collect()
}

/// A value from a body: a JSON string, number or boolean; `None` for the mask (unchanged).
fn value_of(field: &str, value: &serde_json::Value) -> Result<Option<SecretString>, Refusal> {
    match scalar_text(value) {
        Some(text) if text == MASK => Ok(None),
        Some(text) => Ok(Some(SecretString::from(text))),
        None => Err(Refusal::BadRequest(
            Failure::new("Validation error")
                .with_message(format!("`{field}` must be a string, a number or a boolean")),
        )),
    }
}

fn kind_of(kind: Option<&str>) -> Result<SettingType, Refusal> {
    let kind = kind.unwrap_or("string");
    SettingType::parse(kind).ok_or_else(|| {
        Refusal::BadRequest(Failure::new("Validation error").with_message(format!(
            "`type` must be string, number or boolean, not {kind:?}"
        )))
    })
}

fn required(field: &str) -> Refusal {
    Refusal::BadRequest(
        Failure::new("Validation error").with_message(format!("`{field}` is required")),
    )
}

/// Global settings operations.
pub struct SettingsApi;

#[OpenApi(tag = "ApiTags::Settings")]
impl SettingsApi {
    /// All settings
    ///
    /// Every setting, by group, sort order and name. Encrypted values are `********` unless
    /// `reveal=true` (each reveal is logged with the key and the administrator).
    #[oai(path = "/api/settings", method = "get", operation_id = "listSettings")]
    async fn list(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        reveal: Query<Option<bool>>,
    ) -> Read<SettingsEnvelope> {
        let user = as_admin!(state, session);
        let found = state
            .settings
            .rows(RowFilter::All)
            .await
            .map_err(Refusal::from)
            .and_then(|rows| all_shown(&state.settings, &rows, reveal.0 == Some(true), &user));
        match found {
            Ok(data) => Read::Ok(Json(SettingsEnvelope {
                success: true,
                data,
            })),
            Err(r) => r.into(),
        }
    }

    /// Settings groups
    ///
    /// Groups by sort order, then name, each with its settings (masked as in the list).
    #[oai(
        path = "/api/settings/groups",
        method = "get",
        operation_id = "listSettingGroups"
    )]
    async fn groups(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        reveal: Query<Option<bool>>,
    ) -> Read<GroupsEnvelope> {
        let user = as_admin!(state, session);
        match groups_with_settings(&state.settings, None, reveal.0 == Some(true), &user).await {
            Ok(data) => Read::Ok(Json(GroupsEnvelope {
                success: true,
                data,
            })),
            Err(r) => r.into(),
        }
    }

    /// One settings group
    #[oai(
        path = "/api/settings/groups/:groupId",
        method = "get",
        operation_id = "getSettingGroup"
    )]
    async fn group(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        #[oai(name = "groupId")] group_id: Path<String>,
        reveal: Query<Option<bool>>,
    ) -> Read<GroupEnvelope> {
        let user = as_admin!(state, session);
        match groups_with_settings(
            &state.settings,
            Some(&group_id.0),
            reveal.0 == Some(true),
            &user,
        )
        .await
        {
            Ok(mut groups) if !groups.is_empty() => Read::Ok(Json(GroupEnvelope {
                success: true,
                data: groups.remove(0),
            })),
            Ok(_) => Read::NotFound(Json(Failure::new("Group not found"))),
            Err(r) => r.into(),
        }
    }

    /// Settings categories
    ///
    /// The ids of the groups that settings belong to.
    #[oai(
        path = "/api/settings/categories",
        method = "get",
        operation_id = "listSettingCategories"
    )]
    async fn categories(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
    ) -> Read<CategoriesEnvelope> {
        as_admin!(state, session);
        match state.settings.categories().await {
            Ok(data) => Read::Ok(Json(CategoriesEnvelope {
                success: true,
                data,
            })),
            Err(e) => Refusal::from(e).into(),
        }
    }

    /// Encryption health
    ///
    /// Whether this process's encryption key is the database's and a round trip works.
    #[oai(
        path = "/api/settings/health",
        method = "get",
        operation_id = "settingsHealth"
    )]
    async fn health(&self, state: Data<&AppState>, session: SessionCookie) -> Read<HealthEnvelope> {
        as_admin!(state, session);
        match state.settings.encryption_working().await {
            Ok(encryption_working) => Read::Ok(Json(HealthEnvelope {
                success: true,
                data: HealthData {
                    encryption_working,
                    timestamp: Utc::now(),
                },
            })),
            Err(e) => Refusal::from(e).into(),
        }
    }

    /// One setting
    ///
    /// 404 `Setting not found`. An encrypted value is `********` unless `reveal=true`.
    #[oai(
        path = "/api/settings/:key",
        method = "get",
        operation_id = "getSetting"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        key: Path<String>,
        reveal: Query<Option<bool>>,
    ) -> Read<SettingEnvelope> {
        let user = as_admin!(state, session);
        let found = match state.settings.row(&key.0).await {
            Ok(Some(row)) => shown(&state.settings, &row, reveal.0 == Some(true), &user),
            Ok(None) => Err(Refusal::NotFound(Failure::new("Setting not found"))),
            Err(e) => Err(e.into()),
        };
        match found {
            Ok(data) => Read::Ok(Json(SettingEnvelope {
                success: true,
                data,
                message: None,
            })),
            Err(r) => r.into(),
        }
    }

    /// Create a setting
    ///
    /// `{key, value, type, description?, encrypted?, group_id?}`; the value must fit the
    /// type. 409 when the key exists (`PUT` changes it).
    #[oai(
        path = "/api/settings",
        method = "post",
        operation_id = "createSetting"
    )]
    async fn create(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        body: crate::api::StrictJson<CreateSetting>,
    ) -> Write<SettingEnvelope> {
        let user = as_admin!(state, session);
        let body = body.0;
        let created = async {
            let key = body.key.ok_or_else(|| required("key"))?;
            let value = body.value.as_ref().ok_or_else(|| required("value"))?;
            let value =
                value_of("value", value)?.ok_or_else(|| required("value (not the mask)"))?;
            let kind = kind_of(Some(body.kind.as_deref().ok_or_else(|| required("type"))?))?;
            let row = state
                .settings
                .create(NewSetting {
                    key,
                    value,
                    kind,
                    description: body.description,
                    encrypted: body.encrypted.unwrap_or(false),
                    group_id: body.group_id,
                })
                .await?;
            info!(key = %row.key, user = %user.id, "setting created");
            shown(&state.settings, &row, false, &user)
        }
        .await;
        match created {
            Ok(data) => Write::Created(Json(SettingEnvelope {
                success: true,
                data,
                message: Some("Setting created successfully".into()),
            })),
            Err(r) => r.into(),
        }
    }

    /// Change a setting
    ///
    /// At least one of `value`, `description`, `encrypted`, `group_id`. An encrypted setting
    /// stays encrypted unless `encrypted: false` says otherwise (refused for settings the
    /// code declares secret): that reveals it, so the answer shows its value only with
    /// `reveal=true`, and the change is logged as a reveal. A `value` of `********` leaves a
    /// secret as it is.
    #[oai(
        path = "/api/settings/:key",
        method = "put",
        operation_id = "updateSetting"
    )]
    async fn update(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        key: Path<String>,
        reveal: Query<Option<bool>>,
        body: crate::api::StrictJson<UpdateSetting>,
    ) -> Write<SettingEnvelope> {
        let user = as_admin!(state, session);
        let body = body.0;
        let updated = async {
            let change = SettingChange {
                value: match &body.value {
                    Some(v) => value_of("value", v)?,
                    None => None,
                },
                description: body.description,
                encrypted: body.encrypted,
                group_id: body.group_id,
            };
            if change.is_empty() && body.value.is_none() {
                return Err(Refusal::BadRequest(Failure::new("Validation error").with_message(
                    "At least one of `value`, `description`, `encrypted` or `group_id` is required",
                )));
            }
            let (row, decrypted) = state.settings.update(&key.0, change).await?;
            info!(key = %row.key, user = %user.id, "setting changed");
            shown_after(
                &state.settings,
                &row,
                decrypted,
                reveal.0 == Some(true),
                &user,
            )
        }
        .await;
        match updated {
            Ok(data) => Write::Ok(Json(SettingEnvelope {
                success: true,
                data,
                message: Some("Setting updated successfully".into()),
            })),
            Err(r) => r.into(),
        }
    }

    /// Delete a setting
    ///
    /// 404 when missing. A setting the code declares comes back with its default at the next
    /// start.
    #[oai(
        path = "/api/settings/:key",
        method = "delete",
        operation_id = "deleteSetting"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        key: Path<String>,
    ) -> Write<Removed> {
        let user = as_admin!(state, session);
        match state.settings.delete(&key.0).await {
            Ok(true) => {
                info!(key = %key.0, user = %user.id, "setting deleted");
                Write::Ok(Json(Removed {
                    success: true,
                    message: "Setting deleted successfully".into(),
                }))
            }
            Ok(false) => Write::NotFound(Json(Failure::new("Setting not found"))),
            Err(e) => Refusal::from(e).into(),
        }
    }

    /// Search settings
    ///
    /// Settings whose key holds `pattern` literally (`%` and `_` are not wildcards).
    #[oai(
        path = "/api/settings/search",
        method = "post",
        operation_id = "searchSettings"
    )]
    async fn search(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        body: crate::api::StrictJson<SearchSettings>,
    ) -> Write<SettingsEnvelope> {
        let user = as_admin!(state, session);
        let found = async {
            let pattern = body.0.pattern.ok_or_else(|| required("pattern"))?;
            let rows = state
                .settings
                .rows(RowFilter::KeyContains(&pattern))
                .await?;
            all_shown(&state.settings, &rows, false, &user)
        }
        .await;
        match found {
            Ok(data) => Write::Ok(Json(SettingsEnvelope {
                success: true,
                data,
            })),
            Err(r) => r.into(),
        }
    }

    /// Change many settings
    ///
    /// Each item updates its setting (created when missing), alone: 200 when all succeeded,
    /// 207 when some did (`errors` names the others), 400 when none did.
    #[oai(
        path = "/api/settings/bulk",
        method = "post",
        operation_id = "bulkSettings"
    )]
    async fn bulk(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        body: crate::api::StrictJson<BulkSettings>,
    ) -> Write<BulkEnvelope> {
        let user = as_admin!(state, session);
        let total = body.0.settings.len();
        let mut data = Vec::new();
        let mut errors = Vec::new();
        for item in body.0.settings {
            let key = item.key.clone().unwrap_or_default();
            match bulk_item(&state.settings, item, &user).await {
                Ok(setting) => data.push(setting),
                Err(refusal) => errors.push(BulkError {
                    key,
                    error: refusal_text(refusal),
                }),
            }
        }
        let message = format!("{} of {total} settings saved", data.len());
        let envelope = BulkEnvelope {
            success: !data.is_empty(),
            data,
            errors: (!errors.is_empty()).then_some(errors),
            message,
        };
        match (envelope.success, envelope.errors.is_some()) {
            (true, false) => Write::Ok(Json(envelope)),
            (true, true) => Write::Partial(Json(envelope)),
            (false, _) if total == 0 => Write::Ok(Json(envelope)),
            (false, _) => Write::BadRequest(Json(
                Failure::new("No setting was saved")
                    .with_message(envelope.message)
                    .with_bulk(envelope.errors.unwrap_or_default()),
            )),
        }
    }
}

impl Failure {
    /// The per-item errors of a bulk change that saved nothing, as details.
    fn with_bulk(mut self, errors: Vec<BulkError>) -> Self {
        self.details = Some(
            errors
                .into_iter()
                .map(|e| crate::auth::FieldProblem {
                    field: e.key,
                    message: e.error,
                })
                .collect(),
        );
        self
    }
}

fn refusal_text(r: Refusal) -> String {
    let (Refusal::BadRequest(f)
    | Refusal::NotFound(f)
    | Refusal::Conflict(f)
    | Refusal::Failed(f)
    | Refusal::Unavailable(f)) = r;
    match f.message {
        Some(message) => format!("{}: {message}", f.error),
        None => f.error,
    }
}

async fn bulk_item(
    settings: &GlobalSettings,
    item: BulkItem,
    user: &User,
) -> Result<SettingBody, Refusal> {
    let key = item.key.ok_or_else(|| required("key"))?;
    let value = match &item.value {
        Some(v) => value_of("value", v)?,
        None => None,
    };
    let (row, decrypted) = match settings.row(&key).await? {
        Some(_) => {
            settings
                .update(
                    &key,
                    SettingChange {
                        value,
                        description: item.description,
                        encrypted: item.encrypted,
                        group_id: item.group_id,
                    },
                )
                .await?
        }
        None => (
            settings
                .create(NewSetting {
                    value: value.ok_or_else(|| required("value"))?,
                    kind: kind_of(item.kind.as_deref())?,
                    key,
                    description: item.description,
                    encrypted: item.encrypted.unwrap_or(false),
                    group_id: item.group_id,
                })
                .await?,
            false,
        ),
    };
    info!(key = %row.key, user = %user.id, "setting saved (bulk)");
    shown_after(settings, &row, decrypted, false, user)
}

/// Groups (one, or all) with their settings.
async fn groups_with_settings(
    settings: &GlobalSettings,
    only: Option<&str>,
    reveal: bool,
    user: &User,
) -> Result<Vec<GroupBody>, Refusal> {
    let groups = settings.groups().await?;
    let rows = settings.rows(RowFilter::All).await?;
    let mut out = Vec::new();
    for group in groups
        .into_iter()
        .filter(|g| only.is_none_or(|id| g.id == id))
    {
        let mut members: Vec<&SettingRow> = rows
            .iter()
            .filter(|r| r.group_id.as_deref() == Some(group.id.as_str()))
            .collect();
        members.sort_by(|a, b| (a.sort_order, &a.name).cmp(&(b.sort_order, &b.name)));
        let shown_settings = members
            .into_iter()
            .map(|r| shown(settings, r, reveal, user))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(GroupBody::new(group, shown_settings));
    }
    Ok(out)
}
