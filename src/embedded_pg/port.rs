//! The cluster's port: chosen once, at the first start, and kept in `port` beside the data
//! folder, so a `DATABASE_URL` for the diesel CLI stays valid across restarts.

use std::fs;
use std::path::{Path, PathBuf};

use tracing::info;

use super::initdb::write_private;
use super::EmbeddedError;

/// Name of the file under the cluster's root that holds its port.
pub const PORT_FILE: &str = "port";

/// The stored port, or a free one that is stored for the next starts.
pub fn stable_port(root: &Path) -> Result<u16, EmbeddedError> {
    let file = root.join(PORT_FILE);
    if let Some(port) = stored_port(root)? {
        return Ok(port);
    }
    let port = free_port()?;
    write_private(&file, format!("{port}\n").as_bytes(), 0o644)?;
    info!(port, file = %file.display(), "chose the port of the embedded PostgreSQL");
    Ok(port)
}

/// The port in `root/port`, `None` before the first start; a file that does not hold a port
/// number is an error naming it.
pub fn stored_port(root: &Path) -> Result<Option<u16>, EmbeddedError> {
    let file = root.join(PORT_FILE);
    match fs::read_to_string(&file) {
        Ok(text) => text
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .map(Some)
            .ok_or_else(|| {
                EmbeddedError::Failed(format!(
                    "{} does not hold a port number (1-65535); correct it, or delete it to pick a free port",
                    file.display()
                ))
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EmbeddedError::Io {
            context: format!("cannot read {}", file.display()),
            source: e,
        }),
    }
}

/// Fails with a message saying which file to change when another program listens on `port`
/// (PostgreSQL itself would only log "could not bind").
pub fn ensure_free(port: u16, file: PathBuf) -> Result<(), EmbeddedError> {
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(EmbeddedError::PortInUse { port, file })
        }
        Err(e) => Err(EmbeddedError::Io {
            context: format!("cannot check that port {port} is free"),
            source: e,
        }),
    }
}

/// A port nobody listens on right now.
fn free_port() -> Result<u16, EmbeddedError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(EmbeddedError::io("cannot find a free port"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(EmbeddedError::io("cannot find a free port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_chosen_once_and_a_taken_one_is_named() {
        let dir = tempfile::tempdir().expect("dir");
        let port = stable_port(dir.path()).expect("first");
        assert_eq!(stable_port(dir.path()).expect("again"), port);
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("take it");
        let err = ensure_free(port, dir.path().join(PORT_FILE)).expect_err("taken");
        assert!(err.to_string().contains(&port.to_string()), "{err}");
        drop(listener);
        fs::write(dir.path().join(PORT_FILE), "http").expect("write");
        let err = stable_port(dir.path()).expect_err("not a number");
        assert!(err.to_string().contains("port number"), "{err}");
    }
}
