//! Folder plugins: each subfolder of `PLUGINS_PATH` named after its plugin id holds a
//! `plugin.json` manifest (id, name, version, settings) and a `migrations/` folder of
//! `<version>_<name>.sql` files. They get their schema, tables and settings at start with no
//! recompilation; they carry no code, so no routes or jobs.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use tracing::warn;

use super::error::PluginError;
use super::plugin::{Plugin, PluginKind, PluginMigration, PluginSetting};
use crate::settings::definition::SettingType;

/// The manifest's file name.
pub const MANIFEST: &str = "plugin.json";

/// A plugin read from a folder.
#[derive(Debug, Clone)]
pub struct FolderPlugin {
    id: String,
    name: String,
    version: String,
    settings: Vec<PluginSetting>,
    migrations: Vec<PluginMigration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    id: String,
    name: String,
    version: String,
    #[serde(default)]
    settings: Vec<ManifestSetting>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestSetting {
    key: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    default: String,
    description: String,
    #[serde(default)]
    encrypted: bool,
    #[serde(default)]
    required: bool,
}

impl Plugin for FolderPlugin {
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn version(&self) -> &str {
        &self.version
    }
    fn kind(&self) -> PluginKind {
        PluginKind::Folder
    }
    fn migrations(&self) -> Vec<PluginMigration> {
        self.migrations.clone()
    }
    fn settings(&self) -> Vec<PluginSetting> {
        self.settings.clone()
    }
}

/// Every plugin folder under `root`, in name order. Subfolders without a manifest are
/// skipped with a warning (upstream skips folders without `package.json`); anything wrong in
/// a plugin's own files is an error naming the file.
pub fn discover(root: &Path) -> Result<Vec<Arc<dyn Plugin>>, PluginError> {
    let folder_error = |detail: String| PluginError::Folder {
        folder: root.display().to_string(),
        detail,
    };
    let entries = std::fs::read_dir(root)
        .map_err(|e| folder_error(format!("cannot read PLUGINS_PATH: {e}")))?;
    let mut folders = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| folder_error(e.to_string()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            folders.push(entry.path());
        }
    }
    folders.sort();
    let mut plugins: Vec<Arc<dyn Plugin>> = Vec::new();
    for folder in folders {
        if folder.join(MANIFEST).is_file() {
            plugins.push(Arc::new(load(&folder)?));
        } else {
            warn!(folder = %folder.display(), "no {MANIFEST} in this plugin folder; skipped");
        }
    }
    Ok(plugins)
}

/// Reads one plugin folder.
pub fn load(folder: &Path) -> Result<FolderPlugin, PluginError> {
    let error = |detail: String| PluginError::Folder {
        folder: folder.display().to_string(),
        detail,
    };
    let text = std::fs::read_to_string(folder.join(MANIFEST))
        .map_err(|e| error(format!("cannot read {MANIFEST}: {e}")))?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| error(format!("{MANIFEST}: {e}")))?;
    let folder_name = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if folder_name != manifest.id {
        return Err(error(format!(
            "the folder must be named after the plugin id {:?}",
            manifest.id
        )));
    }
    let settings = manifest
        .settings
        .into_iter()
        .map(|s| {
            let kind = SettingType::parse(&s.kind).ok_or_else(|| {
                error(format!(
                    "{MANIFEST}: setting {:?} has type {:?}; use string, number or boolean",
                    s.key, s.kind
                ))
            })?;
            Ok(PluginSetting {
                key: s.key,
                name: s.name,
                kind,
                default: s.default,
                description: s.description,
                encrypted: s.encrypted,
                required: s.required,
            })
        })
        .collect::<Result<Vec<_>, PluginError>>()?;
    Ok(FolderPlugin {
        id: manifest.id,
        name: manifest.name,
        version: manifest.version,
        settings,
        migrations: read_migrations(&folder.join("migrations")).map_err(error)?,
    })
}

/// `<version>_<name>.sql` files of `dir` (none when it does not exist). Other `.sql` names
/// are an error: a misnamed migration must not be skipped silently.
fn read_migrations(dir: &Path) -> Result<Vec<PluginMigration>, String> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read migrations/: {e}"))?;
    let mut migrations = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = file.strip_suffix(".sql") else {
            continue;
        };
        let parsed = stem
            .split_once('_')
            .filter(|(v, n)| {
                !v.is_empty()
                    && v.bytes().all(|b| b.is_ascii_digit())
                    && !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
            .and_then(|(v, n)| v.parse::<i64>().ok().map(|v| (v, n)));
        let Some((version, name)) = parsed else {
            return Err(format!(
                "migrations/{file}: name migrations <version>_<name>.sql (digits, then a-z, 0-9 and _), e.g. 0001_create_bookmarks.sql"
            ));
        };
        let sql = std::fs::read_to_string(entry.path())
            .map_err(|e| format!("cannot read migrations/{file}: {e}"))?;
        migrations.push(PluginMigration {
            version,
            name: name.to_owned(),
            sql: sql.into(),
        });
    }
    migrations.sort_by_key(|m| m.version);
    Ok(migrations)
}
