//! Bodies of the settings routes, in upstream's envelope `{success, data?, message?, error?,
//! details?}`. Encrypted values are shown as [`MASK`] unless the caller asks `?reveal=true`.

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use serde_json::Value;

use crate::settings::{GroupRow, SettingRow};

/// What an encrypted value is shown as; sent back unchanged in a PUT or bulk item, it leaves
/// the secret as it is (so a form showing masked values can be saved as is).
pub const MASK: &str = "********";

/// A setting.
#[derive(Debug, Clone, Object)]
pub struct SettingBody {
    /// Key.
    pub key: String,
    /// Human-readable name.
    pub name: Option<String>,
    /// The value (for an encrypted setting: `********` unless `?reveal=true`).
    pub value: String,
    /// `string`, `number` or `boolean`.
    #[oai(rename = "type")]
    pub kind: String,
    /// What it controls.
    pub description: Option<String>,
    /// Whether it is stored encrypted.
    pub is_encrypted: bool,
    /// Its group.
    pub group_id: Option<String>,
    /// Position in its group.
    pub sort_order: i32,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl SettingBody {
    /// `row` showing `value`.
    pub fn new(row: &SettingRow, value: String) -> Self {
        Self {
            key: row.key.clone(),
            name: row.name.clone(),
            value,
            kind: row.kind.clone(),
            description: row.description.clone(),
            is_encrypted: row.is_encrypted,
            group_id: row.group_id.clone(),
            sort_order: row.sort_order,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// `{success, data: setting, message?}`.
#[derive(Debug, Clone, Object)]
pub struct SettingEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The setting.
    pub data: SettingBody,
    /// What happened (writes).
    #[oai(skip_serializing_if_is_none)]
    pub message: Option<String>,
}

/// `{success, data: [setting]}`.
#[derive(Debug, Clone, Object)]
pub struct SettingsEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The settings.
    pub data: Vec<SettingBody>,
}

/// A group with its settings (by sort order, then name).
#[derive(Debug, Clone, Object)]
pub struct GroupBody {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// What its settings are about.
    pub description: Option<String>,
    /// Icon name.
    pub icon: Option<String>,
    /// Position among groups.
    pub sort_order: i32,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Its settings.
    pub settings: Vec<SettingBody>,
}

impl GroupBody {
    /// `group` with `settings`.
    pub fn new(group: GroupRow, settings: Vec<SettingBody>) -> Self {
        Self {
            id: group.id,
            name: group.name,
            description: group.description,
            icon: group.icon,
            sort_order: group.sort_order,
            created_at: group.created_at,
            updated_at: group.updated_at,
            settings,
        }
    }
}

/// `{success, data: [group]}`.
#[derive(Debug, Clone, Object)]
pub struct GroupsEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The groups.
    pub data: Vec<GroupBody>,
}

/// `{success, data: group}`.
#[derive(Debug, Clone, Object)]
pub struct GroupEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The group.
    pub data: GroupBody,
}

/// `{success, data: [group id]}`.
#[derive(Debug, Clone, Object)]
pub struct CategoriesEnvelope {
    /// Always `true`.
    pub success: bool,
    /// Group ids that settings belong to.
    pub data: Vec<String>,
}

/// Encryption health.
#[derive(Debug, Clone, Object)]
pub struct HealthData {
    /// This process's key is the database's and a round trip works.
    pub encryption_working: bool,
    /// When it was checked.
    pub timestamp: DateTime<Utc>,
}

/// `{success, data: health}`.
#[derive(Debug, Clone, Object)]
pub struct HealthEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The check.
    pub data: HealthData,
}

/// `{success, message}`.
#[derive(Debug, Clone, Object)]
pub struct Removed {
    /// Always `true`.
    pub success: bool,
    /// What happened.
    pub message: String,
}

/// `POST /api/settings`.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CreateSetting {
    /// `^[a-zA-Z0-9._-]{1,255}$`.
    pub key: Option<String>,
    /// A string, number or boolean that fits `type`.
    pub value: Option<Value>,
    /// `string`, `number` or `boolean`.
    #[oai(rename = "type")]
    pub kind: Option<String>,
    /// What it controls.
    pub description: Option<String>,
    /// Store it encrypted (default `false`; settings the code declares encrypted always are).
    pub encrypted: Option<bool>,
    /// An existing group.
    pub group_id: Option<String>,
}

/// `PUT /api/settings/:key`: at least one field.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateSetting {
    /// New value, fitting the setting's type; `********` leaves an encrypted value as it is.
    pub value: Option<Value>,
    /// New description.
    pub description: Option<String>,
    /// Encrypt (`true`) or store in plaintext (`false`; refused for declared secrets).
    /// Absent: as it is (an encrypted setting stays encrypted).
    pub encrypted: Option<bool>,
    /// An existing group.
    pub group_id: Option<String>,
}

/// `POST /api/settings/search`.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct SearchSettings {
    /// Text the key must hold (literally: `%` and `_` match themselves).
    pub pattern: Option<String>,
}

/// One item of `POST /api/settings/bulk`: updates the setting, or creates it when missing.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct BulkItem {
    /// Key.
    pub key: Option<String>,
    /// Value; `********` leaves an encrypted value as it is.
    pub value: Option<Value>,
    /// Type of a setting to create (default `string`).
    #[oai(rename = "type")]
    pub kind: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Encryption, as for `PUT`.
    pub encrypted: Option<bool>,
    /// Group.
    pub group_id: Option<String>,
}

/// `POST /api/settings/bulk`.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct BulkSettings {
    /// The items, applied one by one (each alone succeeds or fails).
    pub settings: Vec<BulkItem>,
}

/// An item of a bulk change that failed.
#[derive(Debug, Clone, Object)]
pub struct BulkError {
    /// Its key (empty when it had none).
    pub key: String,
    /// Why.
    pub error: String,
}

/// `{success, data, errors?, message}` of a bulk change.
#[derive(Debug, Clone, Object)]
pub struct BulkEnvelope {
    /// Whether at least one item succeeded.
    pub success: bool,
    /// The settings changed or created.
    pub data: Vec<SettingBody>,
    /// The items that failed.
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Vec<BulkError>>,
    /// A summary.
    pub message: String,
}

/// A JSON scalar as the text a setting stores; `None` for objects, arrays and null.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
