//! What the admin API does with settings beyond typed reads and `set`: whole rows with their
//! (decrypted) values, creation of arbitrary settings, partial updates, search, groups.
//! Every write locks its row, sends the change notification in its transaction (so every
//! process's cache drops the key when it commits) and keeps a secret encrypted unless the
//! caller explicitly turns encryption off for a setting the code does not declare encrypted.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use secrecy::{ExposeSecret, SecretString};

use super::definition::{is_valid_key, SettingType};
use super::error::{SettingsError, SettingsResult};
use super::service::GlobalSettings;
use super::{key_check, notify};
use crate::db::models::redact::debug_redacting;
use crate::db::schema::{global_setting_groups, global_settings};

/// A setting row as stored: `value` is ciphertext when `is_encrypted`.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = global_settings, check_for_backend(diesel::pg::Pg))]
pub struct SettingRow {
    /// Key.
    pub key: String,
    /// Human-readable name.
    pub name: Option<String>,
    /// Stored value (ciphertext when encrypted).
    pub value: String,
    /// `string`, `number` or `boolean`.
    #[diesel(column_name = type_)]
    pub kind: String,
    /// What it controls.
    pub description: Option<String>,
    /// Whether `value` is ciphertext.
    pub is_encrypted: bool,
    /// Group.
    pub group_id: Option<String>,
    /// Position in the group.
    pub sort_order: i32,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

debug_redacting!(SettingRow {
    key,
    name,
    #[redact]
    value,
    kind,
    description,
    is_encrypted,
    group_id,
    sort_order,
    created_at,
    updated_at,
});

/// A settings group row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = global_setting_groups, check_for_backend(diesel::pg::Pg))]
pub struct GroupRow {
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
}

/// A setting to create.
pub struct NewSetting {
    /// Key, `^[a-zA-Z0-9._-]{1,255}$`.
    pub key: String,
    /// Value, checked against `kind`.
    pub value: SecretString,
    /// Type.
    pub kind: SettingType,
    /// What it controls.
    pub description: Option<String>,
    /// Store it encrypted.
    pub encrypted: bool,
    /// Group (must exist).
    pub group_id: Option<String>,
}

/// A partial change; `None` leaves a part as it is.
#[derive(Default)]
pub struct SettingChange {
    /// New value, checked against the setting's type.
    pub value: Option<SecretString>,
    /// New description.
    pub description: Option<String>,
    /// Encrypt (`true`) or store in plaintext (`false`, refused for settings the code
    /// declares encrypted). Absent: as it is now.
    pub encrypted: Option<bool>,
    /// New group (must exist).
    pub group_id: Option<String>,
}

impl SettingChange {
    /// Whether it changes anything.
    pub fn is_empty(&self) -> bool {
        self.value.is_none()
            && self.description.is_none()
            && self.encrypted.is_none()
            && self.group_id.is_none()
    }
}

/// Which rows to read.
pub enum RowFilter<'a> {
    /// Every setting.
    All,
    /// Those whose key holds this text (a literal substring: `%` and `_` match themselves).
    KeyContains(&'a str),
    /// Those of a group.
    Group(&'a str),
}

impl GlobalSettings {
    /// Setting rows by group order, then sort order, then name, then key.
    pub async fn rows(&self, filter: RowFilter<'_>) -> SettingsResult<Vec<SettingRow>> {
        let mut conn = self.db.conn().await?;
        let mut query = global_settings::table
            .left_join(global_setting_groups::table)
            .select(SettingRow::as_select())
            .order((
                global_setting_groups::sort_order.asc().nulls_last(),
                global_setting_groups::id.asc().nulls_last(),
                global_settings::sort_order.asc(),
                global_settings::name.asc(),
                global_settings::key.asc(),
            ))
            .into_boxed();
        if let RowFilter::KeyContains(text) | RowFilter::Group(text) = filter {
            // No key or group id holds a NUL character (PostgreSQL's text cannot).
            if text.contains('\0') {
                return Ok(Vec::new());
            }
        }
        match filter {
            RowFilter::All => {}
            RowFilter::KeyContains(text) => {
                query = query.filter(
                    global_settings::key
                        .like(format!("%{}%", escape_like(text)))
                        .escape('\\'),
                );
            }
            RowFilter::Group(group) => {
                query = query.filter(global_settings::group_id.eq(group.to_owned()));
            }
        }
        Ok(query.load(&mut conn).await?)
    }

    /// One row (one statement, on a shared connection: no wait for a pooled one).
    pub async fn row(&self, key: &str) -> SettingsResult<Option<SettingRow>> {
        if !is_valid_key(key) {
            return Ok(None);
        }
        let conn = self.db.shared().await?;
        Ok(global_settings::table
            .find(key)
            .select(SettingRow::as_select())
            .first(&mut &*conn)
            .await
            .optional()?)
    }

    /// A row's value in plaintext.
    pub fn plaintext(&self, row: &SettingRow) -> SettingsResult<SecretString> {
        if !row.is_encrypted {
            return Ok(SecretString::from(row.value.clone()));
        }
        if self.key_rotated() {
            return Err(SettingsError::SecretRotated {
                key: row.key.clone(),
            });
        }
        self.cipher
            .decrypt(&row.value)
            .map_err(|source| SettingsError::Decrypt {
                key: row.key.clone(),
                source,
            })
    }

    /// Creates a setting. A taken key is [`SettingsError::AlreadyExists`]; a setting the code
    /// declares takes its declared type and encryption.
    pub async fn create(&self, new: NewSetting) -> SettingsResult<SettingRow> {
        if !is_valid_key(&new.key) {
            return Err(SettingsError::InvalidKey(new.key));
        }
        refuse_nul(&new.key, "value", Some(new.value.expose_secret()))?;
        refuse_nul(&new.key, "description", new.description.as_deref())?;
        refuse_nul(&new.key, "group_id", new.group_id.as_deref())?;
        let declared = self.find(&new.key).map(|(_, def)| def);
        if let Some(def) = declared.filter(|def| def.kind != new.kind) {
            return Err(SettingsError::Declared {
                key: new.key,
                reason: format!("it is declared as a {}", def.kind.as_str()),
            });
        }
        let encrypt = new.encrypted || declared.is_some_and(|def| def.encrypted);
        let mut conn = self.db.conn().await?;
        let row = conn
            .transaction::<_, SettingsError, _>(async |conn| {
                self.refuse_stale_key(conn, &new.key, encrypt).await?;
                let stored = self.stored_form(&new.key, new.kind, encrypt, &new.value)?;
                let row = diesel::insert_into(global_settings::table)
                    .values((
                        global_settings::key.eq(&new.key),
                        global_settings::name.eq(declared.map(|d| d.name)),
                        global_settings::value.eq(&stored),
                        global_settings::type_.eq(new.kind.as_str()),
                        global_settings::description.eq(&new.description),
                        global_settings::is_encrypted.eq(encrypt),
                        global_settings::group_id.eq(&new.group_id),
                    ))
                    .on_conflict_do_nothing()
                    .returning(SettingRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()
                    .map_err(|e| group_error(e, new.group_id.as_deref()))?
                    .ok_or_else(|| SettingsError::AlreadyExists(new.key.clone()))?;
                notify::changed(conn, &new.key).await?;
                Ok(row)
            })
            .await?;
        self.cache.invalidate(&row.key);
        Ok(row)
    }

    /// Applies `change` to the setting `key` (row locked). Without `encrypted`, an encrypted
    /// setting stays encrypted whatever the new value (upstream stored it in plaintext).
    /// Also says whether the change turned an encrypted value into plaintext (a reveal).
    pub async fn update(
        &self,
        key: &str,
        change: SettingChange,
    ) -> SettingsResult<(SettingRow, bool)> {
        if !is_valid_key(key) {
            return Err(SettingsError::NotFound(key.to_owned()));
        }
        let value = change.value.as_ref().map(|v| v.expose_secret());
        refuse_nul(key, "value", value)?;
        refuse_nul(key, "description", change.description.as_deref())?;
        refuse_nul(key, "group_id", change.group_id.as_deref())?;
        let declared = self.find(key).map(|(_, def)| def);
        let mut conn = self.db.conn().await?;
        let row = conn
            .transaction::<_, SettingsError, _>(async |conn| {
                let row = global_settings::table
                    .find(key)
                    .select(SettingRow::as_select())
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?
                    .ok_or_else(|| SettingsError::NotFound(key.to_owned()))?;
                let encrypt = change.encrypted.unwrap_or(row.is_encrypted);
                if !encrypt && declared.is_some_and(|def| def.encrypted) {
                    return Err(SettingsError::Declared {
                        key: key.to_owned(),
                        reason: "it is declared encrypted and cannot be stored in plaintext".into(),
                    });
                }
                let (value, is_encrypted) = if change.value.is_some() || encrypt != row.is_encrypted
                {
                    self.refuse_stale_key(conn, key, encrypt || row.is_encrypted)
                        .await?;
                    let plain = match &change.value {
                        Some(value) => value.clone(),
                        None => self.plaintext(&row)?,
                    };
                    let kind = SettingType::parse(&row.kind).unwrap_or(SettingType::String);
                    (self.stored_form(key, kind, encrypt, &plain)?, encrypt)
                } else {
                    (row.value.clone(), row.is_encrypted)
                };
                let updated = diesel::update(global_settings::table.find(key))
                    .set((
                        global_settings::value.eq(value),
                        global_settings::is_encrypted.eq(is_encrypted),
                        global_settings::description
                            .eq(change.description.clone().or(row.description.clone())),
                        global_settings::group_id
                            .eq(change.group_id.clone().or(row.group_id.clone())),
                    ))
                    .returning(SettingRow::as_returning())
                    .get_result(conn)
                    .await
                    .map_err(|e| group_error(e, change.group_id.as_deref()))?;
                notify::changed(conn, key).await?;
                Ok((updated, row.is_encrypted && !is_encrypted))
            })
            .await?;
        self.cache.invalidate(key);
        Ok(row)
    }

    /// Groups, by sort order then name.
    pub async fn groups(&self) -> SettingsResult<Vec<GroupRow>> {
        let mut conn = self.db.conn().await?;
        Ok(global_setting_groups::table
            .select(GroupRow::as_select())
            .order((
                global_setting_groups::sort_order.asc(),
                global_setting_groups::name.asc(),
            ))
            .load(&mut conn)
            .await?)
    }

    /// The groups settings belong to (upstream's "categories"), in name order.
    pub async fn categories(&self) -> SettingsResult<Vec<String>> {
        let mut conn = self.db.conn().await?;
        Ok(global_settings::table
            .filter(global_settings::group_id.is_not_null())
            .select(global_settings::group_id.assume_not_null())
            .distinct()
            .order(global_settings::group_id.asc())
            .load(&mut conn)
            .await?)
    }

    /// Whether encryption works: this process's key is the database's, and a value
    /// encrypted with it decrypts to itself.
    pub async fn encryption_working(&self) -> SettingsResult<bool> {
        if self.key_rotated() {
            return Ok(false);
        }
        let mut conn = self.db.conn().await?;
        let belongs = key_check::belongs_to(&mut conn, &self.cipher).await?;
        let probe = "deploystack encryption probe";
        let round_trip = self
            .cipher
            .decrypt(&self.cipher.encrypt(probe))
            .is_ok_and(|p| p.expose_secret() == probe);
        Ok(belongs && round_trip)
    }

    /// Refuses to write an encrypted value with a key that is no longer the database's.
    async fn refuse_stale_key(
        &self,
        conn: &mut AsyncPgConnection,
        key: &str,
        encrypted: bool,
    ) -> SettingsResult<()> {
        if encrypted && !key_check::belongs_to(conn, &self.cipher).await? {
            self.cache.mark_key_rotated();
            return Err(SettingsError::SecretRotated {
                key: key.to_owned(),
            });
        }
        Ok(())
    }

    /// `value` checked against `kind` and encrypted when `encrypt`; the error does not repeat
    /// a secret.
    fn stored_form(
        &self,
        key: &str,
        kind: SettingType,
        encrypt: bool,
        value: &SecretString,
    ) -> SettingsResult<String> {
        let normalized = kind.normalize(value.expose_secret()).map_err(|reason| {
            SettingsError::InvalidValue {
                key: key.to_owned(),
                reason: if encrypt {
                    format!("not a valid {}", kind.as_str())
                } else {
                    reason
                },
            }
        })?;
        Ok(if encrypt {
            self.cipher.encrypt(&normalized)
        } else {
            normalized
        })
    }
}

/// A foreign-key violation on `group_id` means the group does not exist.
fn group_error(e: diesel::result::Error, group: Option<&str>) -> SettingsError {
    use diesel::result::{DatabaseErrorKind, Error};
    match (&e, group) {
        (Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _), Some(group)) => {
            SettingsError::GroupNotFound(group.to_owned())
        }
        _ => e.into(),
    }
}

/// `text` with LIKE's wildcards (and the escape character) escaped.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// PostgreSQL's text cannot hold a NUL character: refused as bad input naming the field,
/// rather than failing in the database.
fn refuse_nul(key: &str, field: &str, text: Option<&str>) -> SettingsResult<()> {
    if text.is_some_and(|t| t.contains('\0')) {
        return Err(SettingsError::InvalidValue {
            key: key.to_owned(),
            reason: format!("{field} cannot hold a NUL character"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_match_themselves() {
        assert_eq!(escape_like("a%b_c\\d"), "a\\%b\\_c\\\\d");
        assert_eq!(escape_like("smtp."), "smtp.");
    }
}
