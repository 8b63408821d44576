//! Accounts and sessions against a real PostgreSQL through a real listener: upstream's
//! register, login, logout and `/api/users/me` contract with its exact bodies, the session
//! cookie, failed-login limits, sessions that end (signed out, expired, user deleted) and
//! renew, race-free first administrator, the settings gates read live, the `users` command
//! line, and password hashes shared with upstream's hasher.

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod contract;
mod limits;
mod sessions;
mod support;
mod upstream;
