//! Creating a cluster: `initdb` in a staging folder of our own that becomes `data` only once
//! complete, so an interrupted first start leaves nothing half-made behind, and a folder this
//! backend did not create is never deleted.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rand::distr::{Alphanumeric, SampleString};
use secrecy::SecretString;
use tracing::{info, warn};

use super::process::{self, RunAs};
use super::{EmbeddedError, SUPERUSER};

/// Name of the staging folder under the root; only this folder is ever removed.
const STAGING: &str = "data.initdb";

/// What `data` holds.
#[derive(Debug, PartialEq, Eq)]
pub enum DataFolder {
    /// A cluster (`PG_VERSION` present).
    Cluster,
    /// Nothing yet (missing or empty): initdb may create the cluster.
    Absent,
}

/// Tells a cluster from an absent one, and refuses anything else: a non-empty folder without
/// `PG_VERSION` may be someone's data (a wrong mount, a cluster being restored), so it is kept.
pub fn inspect(data: &Path) -> Result<DataFolder, EmbeddedError> {
    if data.join("PG_VERSION").is_file() {
        return Ok(DataFolder::Cluster);
    }
    match fs::read_dir(data) {
        Ok(mut entries) => match entries.next() {
            None => Ok(DataFolder::Absent),
            Some(_) => Err(EmbeddedError::NotACluster(data.to_path_buf())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DataFolder::Absent),
        Err(_) => Err(EmbeddedError::NotACluster(data.to_path_buf())),
    }
}

/// Runs initdb with a new random superuser password, stored readable only by us, then moves
/// the finished cluster to `data` (an empty `data` folder is replaced by the rename).
pub fn initdb(
    bin_dir: &Path,
    root: &Path,
    data: &Path,
    password_file: &Path,
    run_as: Option<RunAs>,
    durable: bool,
) -> Result<SecretString, EmbeddedError> {
    let staging = root.join(STAGING);
    if staging.exists() {
        warn!(dir = %staging.display(), "removing an incomplete cluster left by an earlier attempt");
        fs::remove_dir_all(&staging).map_err(EmbeddedError::io(format!(
            "cannot remove {}",
            staging.display()
        )))?;
    }
    fs::create_dir(&staging).map_err(EmbeddedError::io(format!(
        "cannot create {}",
        staging.display()
    )))?;
    fs::set_permissions(&staging, fs::Permissions::from_mode(0o700)).map_err(EmbeddedError::io(
        format!("cannot chmod {}", staging.display()),
    ))?;
    let password = Alphanumeric.sample_string(&mut rand::rng(), 32);
    // initdb reads the password from a file its user can read; it is removed right after.
    let pwfile = root.join(".initdb.pw");
    write_private(&pwfile, password.as_bytes(), 0o600)?;
    if let Some(user) = run_as {
        user.chown(&staging)?;
        user.chown(&pwfile)?;
    }
    let mut cmd = process::command(&bin_dir.join("initdb"), run_as);
    cmd.arg("-D")
        .arg(&staging)
        .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C.UTF-8"])
        .args(["--auth-local=scram-sha-256", "--auth-host=scram-sha-256"])
        .arg(format!("--pwfile={}", pwfile.display()));
    if !durable {
        cmd.arg("--no-sync");
    }
    let result = process::run_to_completion(cmd, "initdb");
    let _ = fs::remove_file(&pwfile);
    result.map_err(|e| match (run_as, e) {
        (Some(_), EmbeddedError::Failed(detail)) => EmbeddedError::Unreachable {
            folder: root.to_path_buf(),
            detail,
        },
        (_, e) => e,
    })?;
    write_private(password_file, password.as_bytes(), 0o600)?;
    fs::rename(&staging, data).map_err(EmbeddedError::io(format!(
        "cannot move {} into place",
        staging.display()
    )))?;
    info!(dir = %data.display(), "initialized the embedded PostgreSQL cluster");
    Ok(SecretString::from(password))
}

/// Writes a file that only its owner can read, replacing any earlier one.
pub fn write_private(path: &Path, contents: &[u8], mode: u32) -> Result<(), EmbeddedError> {
    let context = || format!("cannot write {}", path.display());
    let _ = fs::remove_file(path);
    let mut file = fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(mode)
        .open(path)
        .map_err(EmbeddedError::io(context()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(EmbeddedError::io(context()))
}

/// A secret read from one of the cluster's files; `None` when the file does not exist.
pub fn read_secret(path: &Path) -> Result<Option<SecretString>, EmbeddedError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(SecretString::from(text.trim().to_owned()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EmbeddedError::Io {
            context: format!("cannot read {}", path.display()),
            source: e,
        }),
    }
}

/// A new random password for a role of the cluster.
pub fn generate_password() -> SecretString {
    SecretString::from(Alphanumeric.sample_string(&mut rand::rng(), 32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_or_empty_folder_may_receive_a_new_cluster() {
        let dir = tempfile::tempdir().expect("dir");
        let data = dir.path().join("data");
        assert_eq!(inspect(&data).expect("missing"), DataFolder::Absent);
        fs::create_dir(&data).expect("mkdir");
        assert_eq!(inspect(&data).expect("empty"), DataFolder::Absent);
        fs::write(data.join("precious.txt"), "keep me").expect("file");
        let err = inspect(&data).expect_err("not a cluster");
        assert!(err.to_string().contains("PG_VERSION"), "{err}");
        fs::write(data.join("PG_VERSION"), "15\n").expect("version");
        assert_eq!(inspect(&data).expect("cluster"), DataFolder::Cluster);
    }
}
