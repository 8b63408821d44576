//! Database setup: the selection file, the bootstrap under an advisory lock, and the state
//! machine that setup calls and the start-up bring-up share.

mod bootstrap;
pub mod error;
pub mod selection_file;
mod service;

pub use bootstrap::SETUP_LOCK_KEY;
pub use error::SetupError;
pub use service::{SetupCompleted, SetupService};
