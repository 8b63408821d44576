//! Finds the machine's PostgreSQL server binaries (nothing is ever downloaded), and the ones
//! that match an existing cluster: a data folder only runs with its own major version.

use std::path::{Path, PathBuf};
use std::process::Command;

use tracing::info;

use super::EmbeddedError;

/// Where Debian and Ubuntu install each major version (`<major>/bin`).
const VERSIONED_ROOT: &str = "/usr/lib/postgresql";

/// The binaries to run the cluster in `data` with: those [`find_bin_dir`] finds when the cluster
/// is new or of their major version; otherwise, unless `POSTGRES_BIN_DIR` chose them, the
/// machine's binaries of the cluster's version (after installing a newer PostgreSQL beside
/// the one that created it). A mismatch nothing resolves is an error naming both versions.
pub fn bin_dir_for_cluster(explicit: Option<&Path>, data: &Path) -> Result<PathBuf, EmbeddedError> {
    let found = find_bin_dir(explicit)?;
    let Ok(text) = std::fs::read_to_string(data.join("PG_VERSION")) else {
        return Ok(found);
    };
    let cluster = text.trim().to_owned();
    let binaries = server_version(&found)?;
    if binaries == cluster {
        return Ok(found);
    }
    if explicit.is_none() {
        if let Some(dir) = matching_dir(Path::new(VERSIONED_ROOT), &cluster) {
            info!(version = %cluster, dir = %dir.display(), "using the PostgreSQL binaries of the cluster's version");
            return Ok(dir);
        }
    }
    Err(EmbeddedError::VersionMismatch {
        data: data.to_path_buf(),
        cluster,
        binaries,
        bin_dir: found,
    })
}

/// The major version of the server in `bin_dir` as `PG_VERSION` writes it (`15`, or `9.6`
/// before PostgreSQL 10), from `postgres --version`.
pub fn server_version(bin_dir: &Path) -> Result<String, EmbeddedError> {
    let program = bin_dir.join("postgres");
    let output = Command::new(&program)
        .arg("--version")
        .env_clear()
        .output()
        .map_err(EmbeddedError::io(format!(
            "cannot run {}",
            program.display()
        )))?;
    let text = String::from_utf8_lossy(&output.stdout);
    major_of(&text).ok_or_else(|| {
        EmbeddedError::Failed(format!(
            "cannot read the version of {} from {:?}",
            program.display(),
            text.trim()
        ))
    })
}

/// `postgres (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)` gives `15`; `9.6.24` gives `9.6`.
fn major_of(version_output: &str) -> Option<String> {
    let number = version_output
        .split_whitespace()
        .find(|word| word.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = number.split(|c: char| !c.is_ascii_digit());
    let first: u32 = parts.next()?.parse().ok()?;
    if first >= 10 {
        return Some(first.to_string());
    }
    let second: u32 = parts.next()?.parse().ok()?;
    Some(format!("{first}.{second}"))
}

/// `<root>/<version>/bin` when it holds a server.
fn matching_dir(root: &Path, version: &str) -> Option<PathBuf> {
    // A version read from a file must not climb out of `root`.
    if !version.chars().all(|c| c.is_ascii_digit() || c == '.') || version.is_empty() {
        return None;
    }
    let dir = root.join(version).join("bin");
    has_server_binaries(&dir).then_some(dir)
}

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
    candidates.extend(versioned_dirs(Path::new(VERSIONED_ROOT)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_versions_as_pg_version_writes_them() {
        let cases = [
            (
                "postgres (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)\n",
                "15",
            ),
            ("postgres (PostgreSQL) 17beta1", "17"),
            ("postgres (PostgreSQL) 9.6.24", "9.6"),
        ];
        for (output, major) in cases {
            assert_eq!(major_of(output).as_deref(), Some(major), "{output}");
        }
        assert_eq!(major_of("no version here"), None);
    }

    #[test]
    fn binaries_of_the_cluster_version_are_found_beside_others() {
        let root = tempfile::tempdir().expect("dir");
        for version in ["15", "17"] {
            let bin = root.path().join(version).join("bin");
            std::fs::create_dir_all(&bin).expect("bin");
            for program in ["initdb", "postgres"] {
                std::fs::write(bin.join(program), "").expect("program");
            }
        }
        assert_eq!(
            matching_dir(root.path(), "15"),
            Some(root.path().join("15/bin"))
        );
        assert_eq!(matching_dir(root.path(), "16"), None);
        assert_eq!(matching_dir(root.path(), "../15"), None);
    }
}
