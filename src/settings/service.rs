//! `GlobalSettings`: typed reads through the cache, validated and encrypted writes.

use std::sync::{Arc, OnceLock};

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use secrecy::{ExposeSecret, SecretString};

use super::cache::{SettingsCache, StoredSetting};
use super::crypto::{CryptoError, SettingsCipher};
use super::definition::{is_valid_key, parse_bool, SettingDefinition, SettingType, SettingsGroup};
use super::error::{SettingsError, SettingsResult};
use super::{groups, key_check, notify};
use crate::db::schema::{global_setting_groups, global_settings};
use crate::db::{Database, PgConnector};

/// A setting as listed (values of encrypted settings are not included).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = global_settings, check_for_backend(diesel::pg::Pg))]
pub struct SettingInfo {
    /// Key.
    pub key: String,
    /// Human-readable name.
    pub name: Option<String>,
    /// Declared type.
    #[diesel(column_name = type_)]
    pub kind: String,
    /// What it controls.
    pub description: Option<String>,
    /// Whether the stored value is ciphertext.
    pub is_encrypted: bool,
    /// Group.
    pub group_id: Option<String>,
    /// Position in the group.
    pub sort_order: i32,
}

/// Access to global settings; cheap to clone.
#[derive(Clone)]
pub struct GlobalSettings {
    pub(super) db: Database,
    pub(super) cipher: Arc<SettingsCipher>,
    pub(super) cache: Arc<SettingsCache>,
    /// Groups declared beside the core's (the plugins'), once they are loaded.
    extra: Arc<OnceLock<Vec<&'static SettingsGroup>>>,
}

impl GlobalSettings {
    /// A service over `db`, encrypting with `cipher`. The cache stays off until
    /// [`GlobalSettings::listen`] connects.
    pub fn new(db: Database, cipher: Arc<SettingsCipher>) -> Self {
        Self {
            db,
            cipher,
            cache: Arc::new(SettingsCache::default()),
            extra: Arc::default(),
        }
    }

    /// Declares `groups` (the plugins') beside the core's, so their settings are typed,
    /// encrypted and recreated by [`GlobalSettings::set`] as the core's are. Once per
    /// process: the plugins are loaded once; a later call changes nothing.
    pub fn declare(&self, groups: Vec<&'static SettingsGroup>) {
        let _ = self.extra.set(groups);
    }

    /// The definition of `key`, core or declared, with its group.
    pub(super) fn find(&self, key: &str) -> Option<Declared> {
        groups::find(key).or_else(|| {
            self.extra
                .get()?
                .iter()
                .find_map(|g| g.settings.iter().find(|s| s.key == key).map(|s| (*g, s)))
        })
    }

    /// Starts listening for changes from other processes, which turns the cache on.
    pub fn listen(&self, connector: PgConnector) -> tokio::task::JoinHandle<()> {
        self.cache.spawn_listener(connector, self.cipher.clone())
    }

    /// Whether another process rotated the encryption secret since this one started: it
    /// must be restarted with the new one (encrypted values are refused meanwhile).
    pub fn key_rotated(&self) -> bool {
        self.cache.key_rotated()
    }

    /// Whether reads are currently served from the cache.
    pub fn cache_enabled(&self) -> bool {
        self.cache.is_listening()
    }

    /// The cipher (for initializers and callers that encrypt other data the same way).
    pub fn cipher(&self) -> &Arc<SettingsCipher> {
        &self.cipher
    }

    async fn stored(&self, key: &str) -> SettingsResult<Option<StoredSetting>> {
        if let Some(hit) = self.cache.get(key) {
            return Ok(hit);
        }
        let generation = self.cache.generation();
        let mut conn = self.db.conn().await?;
        let row = global_settings::table
            .find(key)
            .select((
                global_settings::value,
                global_settings::type_,
                global_settings::is_encrypted,
            ))
            .first::<(String, String, bool)>(&mut conn)
            .await
            .optional()?
            .map(|(value, kind, is_encrypted)| StoredSetting {
                value,
                kind,
                is_encrypted,
            });
        self.cache.put(key, row.clone(), generation);
        Ok(row)
    }

    /// The value as stored, decrypted when encrypted; `None` when the setting does not exist.
    pub async fn get_secret(&self, key: &str) -> SettingsResult<Option<SecretString>> {
        let Some(row) = self.stored(key).await? else {
            return Ok(None);
        };
        if row.is_encrypted {
            if self.key_rotated() {
                return Err(SettingsError::SecretRotated {
                    key: key.to_owned(),
                });
            }
            match self.cipher.decrypt(&row.value) {
                Ok(value) => Ok(Some(value)),
                Err(source) => Err(self.decrypt_error(key, source).await),
            }
        } else {
            Ok(Some(SecretString::from(row.value)))
        }
    }

    /// Why `key` did not decrypt: a rotation since this process started is told apart from
    /// a damaged value, so the operator learns to restart rather than see random failures.
    async fn decrypt_error(&self, key: &str, source: CryptoError) -> SettingsError {
        if matches!(source, CryptoError::Authentication) {
            if let Ok(mut conn) = self.db.conn().await {
                if let Ok(false) = key_check::belongs_to(&mut conn, &self.cipher).await {
                    // Also when the notice was missed (the listener was down): say so.
                    self.cache.mark_key_rotated();
                    return SettingsError::SecretRotated {
                        key: key.to_owned(),
                    };
                }
            }
        }
        SettingsError::Decrypt {
            key: key.to_owned(),
            source,
        }
    }

    /// A text setting (encrypted ones are decrypted).
    pub async fn get_string(&self, key: &str) -> SettingsResult<Option<String>> {
        Ok(self
            .get_secret(key)
            .await?
            .map(|s| s.expose_secret().to_owned()))
    }

    /// A number setting; a stored value that is not a number is an error naming the key.
    pub async fn get_number(&self, key: &str) -> SettingsResult<Option<f64>> {
        let Some(text) = self.get_string(key).await? else {
            return Ok(None);
        };
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Some)
            .ok_or(SettingsError::WrongType {
                key: key.to_owned(),
                expected: "number",
            })
    }

    /// A boolean setting, accepting upstream's spellings (`true/1/yes/on/enabled`, ...).
    pub async fn get_bool(&self, key: &str) -> SettingsResult<Option<bool>> {
        let Some(text) = self.get_string(key).await? else {
            return Ok(None);
        };
        parse_bool(&text).map(Some).ok_or(SettingsError::WrongType {
            key: key.to_owned(),
            expected: "boolean",
        })
    }

    /// Stores `value` after checking it against the setting's type. Encrypts when the code
    /// declares the setting encrypted or its stored value already is: a secret cannot end up
    /// in plaintext because a caller forgot a flag. A setting the code declares is created
    /// when missing; any other unknown key is `NotFound`.
    ///
    /// The read of the stored row and the write run in one transaction with the row locked
    /// (`FOR UPDATE`), so a concurrent delete either happens before (the key is then missing)
    /// or waits; an update that still finds nothing is `NotFound`, never a silent success.
    /// The change notification is sent in the same transaction, so it goes out exactly when
    /// the write commits.
    pub async fn set(&self, key: &str, value: &str) -> SettingsResult<()> {
        if !is_valid_key(key) {
            return Err(SettingsError::InvalidKey(key.to_owned()));
        }
        let definition = self.find(key);
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, SettingsError, _>(async |conn| {
            // Before the row lock, in a rotation's lock order (key check, then rows).
            let key_is_current = key_check::belongs_to(conn, &self.cipher).await?;
            let existing = global_settings::table
                .find(key)
                .select((global_settings::type_, global_settings::is_encrypted))
                .for_update()
                .first::<(String, bool)>(conn)
                .await
                .optional()?;
            let (kind, encrypt) = storage_plan(key, definition, existing.as_ref())?;
            if encrypt && !key_is_current {
                self.cache.mark_key_rotated();
                return Err(SettingsError::SecretRotated {
                    key: key.to_owned(),
                });
            }
            let stored = self.prepare(key, kind, encrypt, value)?;
            match (definition, existing) {
                (Some((group, def)), None) => {
                    insert_declared(conn, group, def, &stored, encrypt).await?;
                }
                _ => {
                    let n = diesel::update(global_settings::table.find(key))
                        .set((
                            global_settings::value.eq(&stored),
                            global_settings::is_encrypted.eq(encrypt),
                        ))
                        .execute(conn)
                        .await?;
                    if n == 0 {
                        return Err(SettingsError::NotFound(key.to_owned()));
                    }
                }
            }
            notify::changed(conn, key).await?;
            Ok(())
        })
        .await?;
        self.cache.invalidate(key);
        Ok(())
    }

    /// `value` normalized for `kind`, encrypted when `encrypt`; the error names the key and,
    /// for a secret, does not repeat the value.
    fn prepare(
        &self,
        key: &str,
        kind: SettingType,
        encrypt: bool,
        value: &str,
    ) -> SettingsResult<String> {
        let normalized = kind
            .normalize(value)
            .map_err(|reason| SettingsError::InvalidValue {
                key: key.to_owned(),
                reason: if encrypt {
                    format!("not a valid {}", kind.as_str())
                } else {
                    reason
                },
            })?;
        if encrypt && self.key_rotated() {
            return Err(SettingsError::SecretRotated {
                key: key.to_owned(),
            });
        }
        Ok(if encrypt {
            self.cipher.encrypt(&normalized)
        } else {
            normalized
        })
    }

    /// Deletes a setting; `false` when it did not exist. Declared settings come back with
    /// their default at the next start.
    pub async fn delete(&self, key: &str) -> SettingsResult<bool> {
        if !is_valid_key(key) {
            return Ok(false);
        }
        let mut conn = self.db.conn().await?;
        let deleted = conn
            .transaction::<_, SettingsError, _>(async |conn| {
                let n = diesel::delete(global_settings::table.find(key))
                    .execute(conn)
                    .await?;
                if n > 0 {
                    notify::changed(conn, key).await?;
                }
                Ok(n > 0)
            })
            .await?;
        self.cache.invalidate(key);
        Ok(deleted)
    }

    /// Settings (without values), by group order, then sort order, then name; only `group`
    /// when given.
    pub async fn list(&self, group: Option<&str>) -> SettingsResult<Vec<SettingInfo>> {
        let mut conn = self.db.conn().await?;
        let mut query = global_settings::table
            .left_join(global_setting_groups::table)
            .select(SettingInfo::as_select())
            .order((
                global_setting_groups::sort_order.asc().nulls_last(),
                global_setting_groups::id.asc().nulls_last(),
                global_settings::sort_order.asc(),
                global_settings::name.asc(),
                global_settings::key.asc(),
            ))
            .into_boxed();
        if let Some(group) = group {
            query = query.filter(global_settings::group_id.eq(group.to_owned()));
        }
        Ok(query.load(&mut conn).await?)
    }
}

/// A declared setting as found in code: its group and definition.
pub(super) type Declared = (&'static SettingsGroup, &'static SettingDefinition);

/// The type to validate against and whether to encrypt, from the code's declaration and the
/// stored row (either may be missing; both missing is `NotFound`).
fn storage_plan(
    key: &str,
    definition: Option<Declared>,
    existing: Option<&(String, bool)>,
) -> SettingsResult<(SettingType, bool)> {
    Ok(match (definition, existing) {
        (Some((_, def)), Some((_, stored_encrypted))) => {
            (def.kind, def.encrypted || *stored_encrypted)
        }
        (Some((_, def)), None) => (def.kind, def.encrypted),
        (None, Some((kind, stored_encrypted))) => (
            SettingType::parse(kind).unwrap_or(SettingType::String),
            *stored_encrypted,
        ),
        (None, None) => return Err(SettingsError::NotFound(key.to_owned())),
    })
}

/// Creates a declared setting that is missing (or overwrites it, should a concurrent
/// writer have created it meanwhile).
async fn insert_declared(
    conn: &mut diesel_async::AsyncPgConnection,
    group: &SettingsGroup,
    def: &SettingDefinition,
    stored: &str,
    encrypt: bool,
) -> SettingsResult<()> {
    let position = group
        .settings
        .iter()
        .position(|s| s.key == def.key)
        .unwrap_or(0);
    diesel::insert_into(global_settings::table)
        .values((
            global_settings::key.eq(def.key),
            global_settings::name.eq(def.name),
            global_settings::value.eq(stored),
            global_settings::type_.eq(def.kind.as_str()),
            global_settings::description.eq(def.description),
            global_settings::is_encrypted.eq(encrypt),
            global_settings::group_id.eq(group.id),
            global_settings::sort_order.eq(position as i32),
        ))
        .on_conflict(global_settings::key)
        .do_update()
        .set((
            global_settings::value.eq(stored),
            global_settings::is_encrypted.eq(encrypt),
        ))
        .execute(conn)
        .await?;
    Ok(())
}
