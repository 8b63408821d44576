//! The admin API against a real PostgreSQL through a real listener: every route as anonymous,
//! user and administrator; upstream's settings contract with its defects fixed (masking,
//! reveals, encryption kept, caches of every process); the job queue pages; and bad input of
//! every kind answered 400 JSON, never 500.

#[path = "../common/mod.rs"]
mod common;
#[path = "../accounts/support.rs"]
mod support;

mod jobs;
mod matrix;
mod robustness;
mod settings;

use support::Site;

/// A set-up site with an administrator (`admin`) and a user (`user`), and their sessions.
pub struct Admin {
    /// The site.
    pub site: Site,
    /// The administrator's session.
    pub admin: String,
    /// A user's session.
    pub user: String,
}

impl Admin {
    /// A new database, set up by a server that runs no job workers (the tests' jobs stay as
    /// they put them), with both accounts signed in.
    pub async fn new() -> Self {
        let site = Site::with(|cfg| cfg.jobs.concurrency = 0).await;
        let admin = site.register("admin").await.session();
        let user = site.register("user").await.session();
        Self { site, admin, user }
    }
}
