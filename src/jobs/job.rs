//! The typed side of a job: a handler type with its payload type and `run`, and the
//! registry that maps stored type names to handlers.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::jobs::model::holds_nul;

/// A kind of job: its stored type name, its payload and what it does. Implemented by a
/// handler value that holds what the job needs (the pool, a service).
///
/// A job may run more than once (at-least-once delivery): a worker killed mid-run leaves
/// the job to run again when its lease expires.
pub trait Job: Send + Sync + 'static {
    /// The stored type name (upstream's, e.g. `cleanup_old_jobs`).
    const TYPE: &'static str;
    /// What is enqueued; a stored payload that does not decode fails the job at once.
    type Payload: Serialize + DeserializeOwned + Send + 'static;
    /// Stored as the job's `result` on success.
    type Output: Serialize + Send + 'static;
    /// Longest run of this type; `None` takes `JOB_TIMEOUT_MS`. Past it the run's
    /// [`JobContext::cancel`] is cancelled, its future dropped, and the run fails (retried
    /// while attempts remain).
    const TIMEOUT: Option<Duration> = None;

    /// Does the work. An error is retried with backoff until the attempts run out, unless
    /// it is [`JobError::fatal`].
    fn run(
        &self,
        payload: Self::Payload,
        ctx: JobContext,
    ) -> impl Future<Output = Result<Self::Output, JobError>> + Send;
}

/// What a running job knows about itself.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The job's id.
    pub id: String,
    /// This run's number, from 1.
    pub attempt: i32,
    /// Runs allowed.
    pub max_attempts: i32,
    /// Cancelled when the process shuts down: a long job may stop early and return an
    /// error (it is retried), or finish within the shutdown timeout.
    pub shutdown: CancellationToken,
    /// Cancelled when this run must stop now: its lease was taken back (the process stalled
    /// past the lease, so another worker may be running the job) or it ran past its
    /// timeout. Its future is dropped soon after (a third of the lease, or at once for a
    /// timeout); work a handler started outside its future should watch this token.
    pub cancel: CancellationToken,
}

/// Why a run failed. The message is stored in the job's `error` column, so it must not
/// carry secrets.
#[derive(Debug, Clone)]
pub struct JobError {
    message: String,
    retry: bool,
}

impl JobError {
    /// A failure worth retrying (the default for errors converted with `?`).
    pub fn retry(message: impl std::fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            retry: true,
        }
    }

    /// A failure that another run would repeat: the job fails at once.
    pub fn fatal(message: impl std::fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            retry: false,
        }
    }

    /// The stored message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether another attempt may be made.
    pub fn is_retryable(&self) -> bool {
        self.retry
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for JobError {
    fn from(e: E) -> Self {
        JobError::retry(e)
    }
}

/// How a run ended, before it is written.
#[derive(Debug)]
pub(crate) enum RunFailure {
    /// The stored payload does not decode into the handler's type.
    BadPayload(String),
    /// The handler returned an error.
    Failed(JobError),
}

/// A handler with its types erased, as the runtime calls it.
pub(crate) trait ErasedJob: Send + Sync {
    fn run(
        &self,
        payload: Value,
        ctx: JobContext,
    ) -> BoxFuture<'static, Result<Option<Value>, RunFailure>>;

    /// The type's own [`Job::TIMEOUT`].
    fn timeout(&self) -> Option<Duration>;
}

struct Typed<J>(Arc<J>);

impl<J: Job> ErasedJob for Typed<J> {
    fn run(
        &self,
        payload: Value,
        ctx: JobContext,
    ) -> BoxFuture<'static, Result<Option<Value>, RunFailure>> {
        let job = self.0.clone();
        Box::pin(async move {
            let payload: J::Payload = serde_json::from_value(payload)
                .map_err(|e| RunFailure::BadPayload(format!("Invalid JSON payload: {e}")))?;
            let output = job.run(payload, ctx).await.map_err(RunFailure::Failed)?;
            match serde_json::to_value(output) {
                Ok(Value::Null) => Ok(None),
                // PostgreSQL's jsonb refuses \u0000: the write would fail at every retry.
                Ok(value) if holds_nul(&value) => Err(RunFailure::Failed(JobError::fatal(
                    "the result holds a NUL character, which PostgreSQL cannot store",
                ))),
                Ok(value) => Ok(Some(value)),
                Err(e) => Err(RunFailure::Failed(JobError::fatal(format!(
                    "the result does not encode as JSON: {e}"
                )))),
            }
        })
    }

    fn timeout(&self) -> Option<Duration> {
        J::TIMEOUT
    }
}

/// Handlers by type name. Registering a type again replaces its handler (as upstream).
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<&'static str, Arc<dyn ErasedJob>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `job` for its [`Job::TYPE`].
    pub fn register<J: Job>(&mut self, job: J) -> &mut Self {
        self.handlers
            .insert(J::TYPE, Arc::new(Typed(Arc::new(job))));
        self
    }

    /// Adds every handler of `other` (replacing handlers of the same types).
    pub fn extend(&mut self, other: Registry) {
        self.handlers.extend(other.handlers);
    }

    /// The registered type names, sorted.
    pub fn types(&self) -> Vec<&'static str> {
        let mut types: Vec<_> = self.handlers.keys().copied().collect();
        types.sort_unstable();
        types
    }

    pub(crate) fn get(&self, job_type: &str) -> Option<&Arc<dyn ErasedJob>> {
        self.handlers.get(job_type)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("types", &self.types())
            .finish()
    }
}
