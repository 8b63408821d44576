//! The setup token: at each start (and each setup) that finds no administrator, a new
//! one-time token that admits the first administrator's sign-up, written to the log and to
//! `PERSISTENT_DATA_DIR/setup.token` (mode 0600) for an operator whose browser lost the
//! setup grant. Once an administrator exists, the file goes.

use std::path::{Path, PathBuf};

use tracing::{info, warn};

use crate::auth::Accounts;
use crate::settings::secret::private_temp_file;

/// The token file's name.
pub const TOKEN_FILE: &str = "setup.token";

/// The token file in `data_dir`.
pub fn token_file(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// Issues and publishes a token when no administrator exists; removes a stale file when
/// one does.
pub async fn announce(accounts: &Accounts, data_dir: &Path) {
    let file = token_file(data_dir);
    match accounts.start_token().await {
        Ok(Some(token)) => {
            let written = private_temp_file(data_dir, ".setup.token.", &format!("{token}\n"))
                .and_then(|tmp| tmp.persist(&file).map(|_| ()).map_err(|e| e.error));
            if let Err(e) = written {
                warn!(path = %file.display(), error = %e, "cannot write the setup token file; the token is in this log only");
            }
            warn!(
                setup_token = %token,
                path = %file.display(),
                "no administrator yet: sign up the first one in the setup wizard (/setup) in the browser that ran the setup, or anywhere with this one-time setup token"
            );
        }
        Ok(None) => match std::fs::remove_file(&file) {
            Ok(()) => {
                info!(path = %file.display(), "administrator exists: setup token file removed")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                warn!(path = %file.display(), error = %e, "cannot remove the setup token file")
            }
        },
        Err(e) => {
            warn!(error = %e, "cannot issue a setup token; the setup grant or `users create-admin` still create the first administrator")
        }
    }
}
