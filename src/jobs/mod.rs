//! The background job queue on PostgreSQL (upstream's `queue_jobs` and `queue_job_batches`):
//! producing jobs ([`JobQueue`]), running them ([`Workers`]) with leases so that a killed
//! process loses nothing, periodic jobs ([`schedule`]) and the built-in handlers.
//!
//! Delivery is at least once: a job whose worker died runs again once its lease expires, so
//! handlers must be safe to run twice (the built-in ones delete by a condition, which is).

pub mod admin;
pub mod batches;
mod claim;
mod combine;
pub mod error;
pub mod handlers;
pub mod id;
pub mod job;
mod lease;
mod lease_keeper;
pub mod model;
mod outcomes;
pub mod queue;
pub mod runtime;
pub mod schedule;
pub mod service;
mod settle;
pub mod stats;
mod wake_hub;
mod wakeup;

pub use error::QueueError;
pub use job::{Job, JobContext, JobError, Registry};
pub use lease::LEASE_EXPIRED;
pub use model::{BatchRecord, EnqueueOptions, JobRecord, JobStatus, NewJob};
pub use queue::JobQueue;
pub use runtime::Workers;
pub use service::JobService;

/// The LISTEN/NOTIFY channel on which due jobs are announced (by a statement-level trigger
/// on `queue_jobs`, see the `job_queue_runtime` migration).
pub const CHANNEL: &str = "deploystack_jobs";
