//! Writes the code's definitions into the database at setup and at every start: missing
//! groups and settings are inserted and code-owned metadata of existing ones refreshed in a
//! single statement; values an administrator changed are never touched, and settings that
//! only the database knows are reported, not deleted.

use std::collections::HashMap;
use std::sync::Arc;

use diesel::sql_types::{Array, BigInt, Bool, Integer, Jsonb, Nullable, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::future::BoxFuture;
use secrecy::ExposeSecret;
use tracing::{info, warn};

use super::crypto::SettingsCipher;
use super::definition::{parse_bool, SettingDefinition, SettingsGroup};
use super::groups;
use super::{key_check, notify};
use crate::db::LivePool;
use crate::lifecycle::Initializer;

/// Serializes initialization and secret rotation across processes ("dssettng"): both
/// rewrite stored values, and neither may see the other's half-done work.
pub const INIT_LOCK_KEY: i64 = 0x6473_7365_7474_6e67;

/// One statement: insert what is missing, refresh metadata that differs, and return what
/// the report needs from the rows as they were before.
const SYNC_STATEMENT: &str = r#"
WITH def_groups (id, name, description, icon, sort_order) AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[])
), def_settings (key, name, value, type, description, is_encrypted, group_id, sort_order) AS (
    SELECT * FROM unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bool[], $12::text[], $13::int4[])
), inserted_groups AS (
    INSERT INTO global_setting_groups (id, name, description, icon, sort_order)
    SELECT * FROM def_groups ON CONFLICT (id) DO NOTHING RETURNING id
), updated_groups AS (
    UPDATE global_setting_groups g
    SET name = d.name, description = d.description, icon = d.icon, sort_order = d.sort_order
    FROM def_groups d
    WHERE g.id = d.id
      AND (g.name, g.description, g.icon, g.sort_order) IS DISTINCT FROM (d.name, d.description, d.icon, d.sort_order)
    RETURNING g.id
), inserted_settings AS (
    INSERT INTO global_settings (key, name, value, type, description, is_encrypted, group_id, sort_order)
    SELECT * FROM def_settings ON CONFLICT (key) DO NOTHING RETURNING key
), updated_settings AS (
    UPDATE global_settings s
    SET name = d.name, type = d.type, description = d.description, group_id = d.group_id, sort_order = d.sort_order
    FROM def_settings d
    WHERE s.key = d.key
      AND (s.name, s.type, s.description, s.group_id, s.sort_order) IS DISTINCT FROM (d.name, d.type, d.description, d.group_id, d.sort_order)
    RETURNING s.key
)
SELECT
    (SELECT count(*) FROM inserted_groups) AS groups_inserted,
    (SELECT count(*) FROM updated_groups) AS groups_updated,
    (SELECT count(*) FROM inserted_settings) AS settings_inserted,
    (SELECT count(*) FROM updated_settings) AS settings_updated,
    ARRAY(SELECT key FROM global_settings WHERE key <> ALL ($6) ORDER BY key) AS unknown_keys,
    (SELECT jsonb_object_agg(key, jsonb_build_array(value, is_encrypted))
       FROM global_settings WHERE key = ANY ($14) OR (key = ANY ($15) AND NOT is_encrypted)) AS watched
"#;

/// What an initialization did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitReport {
    /// Groups created.
    pub groups_inserted: i64,
    /// Groups whose metadata changed.
    pub groups_updated: i64,
    /// Settings created with their default.
    pub settings_inserted: i64,
    /// Settings whose metadata changed.
    pub settings_updated: i64,
    /// Settings in the database that the code no longer declares (kept).
    pub unknown_keys: Vec<String>,
    /// Required settings still empty after initialization, for features that are switched
    /// on (a group's `<group>.enabled`, when it has one).
    pub empty_required: Vec<String>,
    /// Settings that were stored in plaintext although declared encrypted, now encrypted.
    pub encrypted_now: Vec<String>,
}

/// The row [`SYNC_STATEMENT`] returns.
#[derive(QueryableByName)]
struct SyncRow {
    #[diesel(sql_type = BigInt)]
    groups_inserted: i64,
    #[diesel(sql_type = BigInt)]
    groups_updated: i64,
    #[diesel(sql_type = BigInt)]
    settings_inserted: i64,
    #[diesel(sql_type = BigInt)]
    settings_updated: i64,
    #[diesel(sql_type = Array<Text>)]
    unknown_keys: Vec<String>,
    /// Pre-statement `{key: [value, is_encrypted]}` of the settings the report looks at.
    #[diesel(sql_type = Nullable<Jsonb>)]
    watched: Option<serde_json::Value>,
}

/// A group's on/off switch (`smtp.enabled`), when it declares one.
fn switch_of(group: &SettingsGroup) -> Option<&SettingDefinition> {
    group.settings.iter().find(|d| d.key.ends_with(".enabled"))
}

/// Runs the initialization of the core's groups on `conn` in one transaction under an
/// advisory lock.
pub async fn initialize(
    conn: &mut AsyncPgConnection,
    cipher: &SettingsCipher,
) -> anyhow::Result<InitReport> {
    initialize_groups(conn, cipher, groups::ALL).await
}

/// [`initialize`] with every group in force: the core's and the plugins' (a key no group
/// declares is reported as unknown).
pub async fn initialize_groups(
    conn: &mut AsyncPgConnection,
    cipher: &SettingsCipher,
    all: &[&'static SettingsGroup],
) -> anyhow::Result<InitReport> {
    let defs: Vec<_> = all
        .iter()
        .flat_map(|g| g.settings.iter().enumerate().map(move |(i, s)| (*g, i, s)))
        .collect();
    // The report looks at required settings, and at each feature's `<group>.enabled` switch:
    // a required setting of a switched-off feature (SMTP by default) is not a problem.
    let watched_keys: Vec<String> = defs
        .iter()
        .filter(|(g, _, d)| d.required || switch_of(g).is_some_and(|w| w.key == d.key))
        .map(|(_, _, d)| d.key.to_owned())
        .collect();
    let encrypted: Vec<String> = defs
        .iter()
        .filter(|(_, _, d)| d.encrypted)
        .map(|(_, _, d)| d.key.to_owned())
        .collect();
    let query = diesel::sql_query(SYNC_STATEMENT)
        .bind::<Array<Text>, _>(all.iter().map(|g| g.id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(all.iter().map(|g| g.name).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(all.iter().map(|g| g.description).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(all.iter().map(|g| g.icon).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(all.iter().map(|g| g.sort_order).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(defs.iter().map(|(_, _, d)| d.key).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(defs.iter().map(|(_, _, d)| d.name).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            defs.iter()
                .map(|(_, _, d)| {
                    if d.encrypted {
                        cipher.encrypt(d.default)
                    } else {
                        d.default.to_owned()
                    }
                })
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(
            defs.iter()
                .map(|(_, _, d)| d.kind.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(
            defs.iter()
                .map(|(_, _, d)| d.description)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Bool>, _>(defs.iter().map(|(_, _, d)| d.encrypted).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(defs.iter().map(|(g, _, _)| g.id).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(defs.iter().map(|(_, i, _)| *i as i32).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(watched_keys)
        .bind::<Array<Text>, _>(encrypted);
    conn.transaction::<_, anyhow::Error, _>(async |conn| {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({INIT_LOCK_KEY})"))
            .execute(conn)
            .await?;
        // A rotation may have committed since this process's key check passed: defaults
        // encrypted with the old key would then be unreadable.
        if !key_check::belongs_to(conn, cipher).await? {
            return Err(crate::lifecycle::Refusal(
                key_check::KeyMismatch {
                    detail: " (it was rotated after this process started)".to_owned(),
                }
                .to_string(),
            )
            .into());
        }
        let row: SyncRow = query.get_result(conn).await?;
        let watched: HashMap<String, (String, bool)> = row
            .watched
            .map(serde_json::from_value)
            .transpose()?
            .unwrap_or_default();
        let mut report = InitReport {
            groups_inserted: row.groups_inserted,
            groups_updated: row.groups_updated,
            settings_inserted: row.settings_inserted,
            settings_updated: row.settings_updated,
            unknown_keys: row.unknown_keys,
            ..InitReport::default()
        };
        let enabled = |group: &SettingsGroup| -> bool {
            let Some(switch) = switch_of(group) else {
                return true; // no switch: the group is always in use
            };
            let value = watched
                .get(switch.key)
                .map_or(switch.default, |(v, _)| v.as_str());
            parse_bool(value).unwrap_or(false)
        };
        for (group, _, def) in &defs {
            let in_use = def.required && enabled(group);
            let Some((value, is_encrypted)) = watched.get(def.key) else {
                // Inserted just now with its default.
                if in_use && def.default.is_empty() {
                    report.empty_required.push(def.key.to_owned());
                }
                continue;
            };
            if def.encrypted && !is_encrypted {
                notify::encrypt_in_place(conn, def.key, &cipher.encrypt(value)).await?;
                report.encrypted_now.push(def.key.to_owned());
            }
            if in_use {
                let empty = if *is_encrypted {
                    cipher
                        .decrypt(value)
                        .map(|v| v.expose_secret().is_empty())
                        .unwrap_or(false)
                } else {
                    value.is_empty()
                };
                if empty {
                    report.empty_required.push(def.key.to_owned());
                }
            }
        }
        let changed = report.groups_inserted
            + report.groups_updated
            + report.settings_inserted
            + report.settings_updated;
        if changed > 0 || !report.encrypted_now.is_empty() {
            notify::all_changed(conn).await?;
        }
        Ok(report)
    })
    .await
}

/// The settings initialization as a post-migration initializer.
pub struct SettingsInitializer {
    cipher: Arc<SettingsCipher>,
    groups: Vec<&'static SettingsGroup>,
}

impl SettingsInitializer {
    /// An initializer of the core's groups, encrypting defaults with `cipher`.
    pub fn new(cipher: Arc<SettingsCipher>) -> Self {
        Self {
            cipher,
            groups: groups::ALL.to_vec(),
        }
    }

    /// The same, with `extra` groups (the plugins') after the core's.
    pub fn with_groups(mut self, extra: Vec<&'static SettingsGroup>) -> Self {
        self.groups.extend(extra);
        self
    }
}

impl Initializer for SettingsInitializer {
    fn name(&self) -> &'static str {
        "global settings"
    }

    fn run<'a>(&'a self, pool: &'a LivePool) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut conn = pool.get().await?;
            let report = initialize_groups(&mut conn, &self.cipher, &self.groups).await?;
            info!(
                groups_inserted = report.groups_inserted,
                groups_updated = report.groups_updated,
                settings_inserted = report.settings_inserted,
                settings_updated = report.settings_updated,
                "global settings initialized"
            );
            for key in &report.unknown_keys {
                warn!(
                    key,
                    "setting exists in the database but not in the code; kept"
                );
            }
            for key in &report.encrypted_now {
                warn!(
                    key,
                    "setting was stored in plaintext although declared encrypted; encrypted it"
                );
            }
            for key in &report.empty_required {
                warn!(key, "required setting of an enabled feature is empty");
            }
            Ok(())
        })
    }
}
