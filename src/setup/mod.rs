//! Database setup: the selection file, the bootstrap under an advisory lock, and the
//! post-migration initializers.

mod bootstrap;
pub mod error;
pub mod initializer;
pub mod selection_file;
mod service;

pub use error::SetupError;
pub use initializer::Initializer;
pub use service::{SetupCompleted, SetupService};
