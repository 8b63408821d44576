//! `persistent_data/db.selection.json`: the record that setup was performed for this
//! installation folder, in upstream's format, written atomically so a crash can never
//! leave a torn file that blocks or fakes setup.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::Path;

use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Upstream's file format version.
pub const SELECTION_VERSION: &str = "1.0";
/// The only database type this backend supports.
pub const POSTGRESQL: &str = "postgresql";

/// Contents of the selection file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseSelection {
    /// `postgresql`; older upstream installations may hold `sqlite` or `turso`.
    #[serde(rename = "type")]
    pub database_type: String,
    /// When setup completed, ISO-8601 in UTC with milliseconds (as JavaScript prints it).
    #[serde(rename = "selectedAt")]
    pub selected_at: String,
    /// Format version.
    pub version: String,
}

impl DatabaseSelection {
    /// A record of a PostgreSQL setup completed now.
    pub fn postgresql_now() -> Self {
        Self {
            database_type: POSTGRESQL.into(),
            selected_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            version: SELECTION_VERSION.into(),
        }
    }
}

/// What is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectionState {
    /// No file: setup has not been performed for this folder.
    Absent,
    /// A valid record.
    Present(DatabaseSelection),
    /// A file that is not a selection record; setup may replace it.
    Unreadable(String),
}

/// Reads the file; I/O errors other than "not found" are reported as unreadable.
pub fn read(path: &Path) -> SelectionState {
    match fs::read(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => SelectionState::Absent,
        Err(e) => SelectionState::Unreadable(e.to_string()),
        Ok(bytes) => match serde_json::from_slice::<DatabaseSelection>(&bytes) {
            Ok(selection) => SelectionState::Present(selection),
            Err(e) => SelectionState::Unreadable(e.to_string()),
        },
    }
}

/// Writes `selection` to `path` through a temporary file in the same folder: write, fsync,
/// rename, fsync the folder. Readers see the old state or the whole new file, never a part.
pub fn write_atomic(path: &Path, selection: &DatabaseSelection) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut body = serde_json::to_vec_pretty(selection).map_err(std::io::Error::other)?;
    body.push(b'\n');
    let mut tmp = tempfile::Builder::new()
        .prefix(".db.selection.")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(&body)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()
}
