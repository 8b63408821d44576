//! Pieces every part of the backend's start-up shares, kept apart from `setup` so that the
//! areas that plug into the lifecycle (roles, settings, later the job queue and plugins) do
//! not depend on the setup machinery, and `setup` does not depend on them.

pub mod backoff;
pub mod initializer;
pub mod phase;

pub use backoff::Backoff;
pub use initializer::{Initializer, Refusal};
pub use phase::Phase;
