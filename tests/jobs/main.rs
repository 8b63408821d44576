//! The job queue against a real PostgreSQL: producing (typed, batches, inside a caller's
//! transaction), running (exactly once per attempt across runtimes and processes, leases
//! after SIGKILL, retries, failures, panics), batches, graceful shutdown, periodic jobs,
//! the built-in handlers on seeded rows, and the `jobs` command line.

#[path = "../common/mod.rs"]
mod common;

mod batches;
mod claims;
mod cli;
mod handlers;
mod leases;
mod partitions;
mod periodic;
mod processes;
mod producing;
mod running;
mod support;
