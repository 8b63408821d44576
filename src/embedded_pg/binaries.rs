//! Finds the machine's PostgreSQL server binaries; nothing is ever downloaded.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::EmbeddedError;

/// The first folder holding both `initdb` and `postgres`: `POSTGRES_BIN_DIR`, then
/// `pg_config --bindir`, then the newest `/usr/lib/postgresql/*/bin`.
pub fn find_bin_dir(explicit: Option<&Path>) -> Result<PathBuf, EmbeddedError> {
    if let Some(dir) = explicit {
        return if has_server_binaries(dir) {
            Ok(dir.to_path_buf())
        } else {
            Err(EmbeddedError::BinariesMissing(format!(
                "POSTGRES_BIN_DIR={} has no initdb and postgres",
                dir.display()
            )))
        };
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let mut candidates: Vec<PathBuf> = from_pg_config.into_iter().collect();
    candidates.extend(versioned_dirs(Path::new("/usr/lib/postgresql")));
    candidates
        .into_iter()
        .find(|dir| has_server_binaries(dir))
        .ok_or_else(|| {
            EmbeddedError::BinariesMissing(
                "no initdb/postgres found via pg_config or /usr/lib/postgresql/*/bin".into(),
            )
        })
}

/// `/usr/lib/postgresql/<major>/bin`, newest major first.
fn versioned_dirs(root: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .collect();
    found.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    found.into_iter().map(|(_, dir)| dir).collect()
}

fn has_server_binaries(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("postgres").is_file()
}
