//! The core services against a real PostgreSQL: results and row counts, cascades,
//! constraints (classified in any server language), the transactions around owner checks,
//! first registrations and token revocation, redacted `Debug` of secrets and the role sync.

#[path = "../common/mod.rs"]
mod common;

mod constraints;
mod installations;
mod locales;
mod locks;
mod redaction;
mod roles;
mod teams;
mod tokens;
mod users;

use common::pg::{ready_database, TestDb};
use deploystack_backend::db::models::{AuthType, Team, User};
use deploystack_backend::db::Database;
use deploystack_backend::services::{CreateUser, TeamService, UserService};

pub(crate) struct Fixture {
    pub(crate) db: TestDb,
    pub(crate) database: Database,
    pub(crate) users: UserService,
    pub(crate) teams: TeamService,
}

pub(crate) async fn fixture() -> Fixture {
    let db = TestDb::new().await;
    let database = ready_database(&db).await;
    Fixture {
        users: UserService::new(database.clone()),
        teams: TeamService::new(database.clone()),
        database,
        db,
    }
}

pub(crate) fn registration(name: &str) -> CreateUser {
    CreateUser {
        username: name.into(),
        email: format!("{name}@example.com"),
        auth_type: AuthType::EmailSignup,
        first_name: Some(name.into()),
        last_name: None,
        github_id: None,
        hashed_password: Some("argon2-hash".into()),
    }
}

pub(crate) async fn user(f: &Fixture, name: &str) -> User {
    f.users
        .create_user(registration(name))
        .await
        .expect("create user")
}

pub(crate) async fn team(f: &Fixture, slug: &str, owner: &User) -> Team {
    f.teams
        .create_team(slug, slug, None, &owner.id, false)
        .await
        .expect("create team")
}

pub(crate) async fn count(db: &TestDb, sql: &str) -> i64 {
    db.query(sql).await[0].get(0)
}

/// A token grant for `user` in `team`.
pub(crate) fn grant(user: &User, team: &Team) -> deploystack_backend::services::TokenGrant {
    deploystack_backend::services::TokenGrant {
        user_id: user.id.clone(),
        team_id: team.id.clone(),
        client_id: "cli".into(),
        scope: "mcp:read".into(),
    }
}
