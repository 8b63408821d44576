//! The core services against a real PostgreSQL: results and row counts, cascades,
//! constraints, the team-with-owner transaction and the role sync.

mod common;

use chrono::Duration;
use common::pg::{ready_database, TestDb};
use deploystack_backend::db::models::{
    AuthType, GlobalRole, InstallationId, McpServerId, NewInstallation, NewMcpServer, RoleId, Team,
    TeamId, TeamRole, User, UserChanges, UserId,
};
use deploystack_backend::db::Database;
use deploystack_backend::services::{
    CreateUser, McpInstallationService, McpServerService, RoleService, ServiceError, TeamService,
    TokenGrant, TokenService, UserService,
};
use secrecy::ExposeSecret;

struct Fixture {
    db: TestDb,
    database: Database,
    users: UserService,
    teams: TeamService,
}

async fn fixture() -> Fixture {
    let db = TestDb::new().await;
    let database = ready_database(&db).await;
    Fixture {
        users: UserService::new(database.clone()),
        teams: TeamService::new(database.clone()),
        database,
        db,
    }
}

fn registration(name: &str) -> CreateUser {
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

async fn user(f: &Fixture, name: &str) -> User {
    f.users
        .create_user(registration(name))
        .await
        .expect("create user")
}

async fn team(f: &Fixture, slug: &str, owner: &User) -> Team {
    f.teams
        .create_team(slug, slug, None, &owner.id, false)
        .await
        .expect("create team")
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.query(sql).await[0].get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_user_is_admin_and_later_users_are_not() {
    let f = fixture().await;
    let first = user(&f, "ada").await;
    assert_eq!(first.role_id, Some(RoleId::from(GlobalRole::Admin)));
    assert!(first.email_verified);
    let second = user(&f, "bob").await;
    assert_eq!(second.role_id, Some(RoleId::from(GlobalRole::User)));
    assert!(!second.email_verified);

    assert_eq!(
        f.users.get_user(&first.id).await.expect("get"),
        Some(first.clone())
    );
    assert_eq!(
        f.users.get_user(&UserId::generate()).await.expect("get"),
        None
    );
    assert_eq!(
        f.users
            .get_user_by_email("bob@example.com")
            .await
            .expect("get")
            .map(|u| u.id),
        Some(second.id.clone())
    );
    let page = f.users.list_users(1, 1).await.expect("list");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, second.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_make_exactly_one_admin() {
    let f = fixture().await;
    let sql = &f.db;
    let creations = (0..8).map(|i| f.users.create_user(registration(&format!("u{i}"))));
    for result in futures_util::future::join_all(creations).await {
        result.expect("create");
    }
    assert_eq!(
        count(
            sql,
            "SELECT count(*) FROM users WHERE role_id = 'global_admin'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_email_is_a_conflict() {
    let f = fixture().await;
    user(&f, "ada").await;
    let err = f
        .users
        .create_user(registration("ada"))
        .await
        .expect_err("duplicate");
    assert!(
        matches!(&err, ServiceError::Conflict(m) if m.contains("users_email_key")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_and_deletes_report_whether_a_row_changed() {
    let f = fixture().await;
    let ada = user(&f, "ada").await;
    let changes = UserChanges {
        username: Some("ada2".into()),
        ..UserChanges::default()
    };
    assert!(f
        .users
        .update_user(&ada.id, &changes)
        .await
        .expect("update"));
    assert!(!f
        .users
        .update_user(&UserId::generate(), &changes)
        .await
        .expect("update"));
    assert!(f
        .users
        .set_global_role(&ada.id, GlobalRole::User)
        .await
        .expect("role"));
    let t = team(&f, "acme", &ada).await;
    assert!(f
        .teams
        .update_team_name(&t.id, "Acme Inc")
        .await
        .expect("rename"));
    assert!(!f
        .teams
        .update_team_name(&TeamId::generate(), "x")
        .await
        .expect("rename"));
    assert_eq!(
        f.teams.get_team(&t.id).await.expect("get").map(|t| t.name),
        Some("Acme Inc".into())
    );
    assert!(f.teams.delete_team(&t.id).await.expect("delete"));
    assert!(!f.teams.delete_team(&t.id).await.expect("delete again"));
    assert!(f.users.delete_user(&ada.id).await.expect("delete"));
    assert!(!f.users.delete_user(&ada.id).await.expect("delete again"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_is_created_with_its_owner_as_team_admin() {
    let f = fixture().await;
    let ada = user(&f, "ada").await;
    let t = team(&f, "acme", &ada).await;
    let members = f.teams.list_members(&t.id).await.expect("members");
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].0.role, TeamRole::Admin);
    assert_eq!(members[0].1.id, ada.id);
    assert_eq!(
        f.teams
            .get_team_by_slug("acme")
            .await
            .expect("get")
            .map(|t| t.id),
        Some(t.id.clone())
    );
    let mine = f.teams.list_teams_for_user(&ada.id).await.expect("list");
    assert_eq!(mine, vec![(t, TeamRole::Admin)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_creation_rolls_back_as_a_whole() {
    let f = fixture().await;
    let sql = &f.db;
    let ada = user(&f, "ada").await;
    team(&f, "acme", &ada).await;

    // A taken slug: no second team, no stray membership.
    let err = f
        .teams
        .create_team("Other", "acme", None, &ada.id, false)
        .await
        .expect_err("dup");
    assert!(
        matches!(&err, ServiceError::Conflict(m) if m.contains("teams_slug_key")),
        "{err:?}"
    );
    // An unknown owner.
    let err = f
        .teams
        .create_team("Ghost", "ghost", None, &UserId::generate(), false)
        .await
        .expect_err("fk");
    assert!(matches!(err, ServiceError::NotFound(_)), "{err:?}");

    // The membership insert fails after the team insert succeeded: both are rolled back.
    sql.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$; \
         CREATE TRIGGER refuse BEFORE INSERT ON team_memberships FOR EACH ROW EXECUTE FUNCTION refuse()",
    )
    .await;
    f.teams
        .create_team("Beta", "beta", None, &ada.id, false)
        .await
        .expect_err("trigger");
    assert_eq!(count(sql, "SELECT count(*) FROM teams").await, 1);
    assert_eq!(count(sql, "SELECT count(*) FROM team_memberships").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memberships_add_change_remove_with_rules() {
    let f = fixture().await;
    let ada = user(&f, "ada").await;
    let bob = user(&f, "bob").await;
    let t = team(&f, "acme", &ada).await;

    let m = f
        .teams
        .add_member(&t.id, &bob.id, TeamRole::User)
        .await
        .expect("add");
    assert_eq!(m.role, TeamRole::User);
    let err = f
        .teams
        .add_member(&t.id, &bob.id, TeamRole::User)
        .await
        .expect_err("dup");
    assert!(matches!(err, ServiceError::Conflict(_)), "{err:?}");
    let err = f
        .teams
        .add_member(&t.id, &UserId::generate(), TeamRole::User)
        .await
        .expect_err("fk");
    assert!(matches!(err, ServiceError::NotFound(_)), "{err:?}");
    let err = f
        .teams
        .add_member(&TeamId::generate(), &bob.id, TeamRole::User)
        .await
        .expect_err("no team");
    assert!(matches!(err, ServiceError::NotFound(_)), "{err:?}");

    assert!(f
        .teams
        .change_member_role(&t.id, &bob.id, TeamRole::Admin)
        .await
        .expect("change"));
    assert!(!f
        .teams
        .change_member_role(&t.id, &UserId::generate(), TeamRole::Admin)
        .await
        .expect("change"));
    let err = f
        .teams
        .change_member_role(&t.id, &ada.id, TeamRole::User)
        .await
        .expect_err("owner");
    assert!(matches!(err, ServiceError::Invalid(_)), "{err:?}");

    let err = f
        .teams
        .remove_member(&t.id, &ada.id)
        .await
        .expect_err("owner");
    assert!(matches!(err, ServiceError::Invalid(_)), "{err:?}");
    assert!(f.teams.remove_member(&t.id, &bob.id).await.expect("remove"));
    assert!(!f
        .teams
        .remove_member(&t.id, &bob.id)
        .await
        .expect("remove again"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_limit_holds_under_concurrency() {
    let f = fixture().await;
    let sql = &f.db;
    let ada = user(&f, "ada").await;
    let t = team(&f, "acme", &ada).await; // member_limit 3, the owner is one
    let mut others = Vec::new();
    for i in 0..6 {
        others.push(user(&f, &format!("u{i}")).await);
    }
    let adds = others
        .iter()
        .map(|u| f.teams.add_member(&t.id, &u.id, TeamRole::User));
    let results = futures_util::future::join_all(adds).await;
    let added = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(added, 2);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, ServiceError::Invalid(_))));
    assert_eq!(count(sql, "SELECT count(*) FROM team_memberships").await, 3);
}

async fn server(f: &Fixture, owner: &User, t: &Team, slug: &str) -> McpServerId {
    let servers = McpServerService::new(f.database.clone());
    let s = servers
        .create_server(&NewMcpServer {
            id: McpServerId::generate(),
            name: slug.into(),
            slug: slug.into(),
            description: "test server".into(),
            language: "typescript".into(),
            runtime: "node".into(),
            visibility: "team".into(),
            owner_team_id: Some(t.id.clone()),
            created_by: owner.id.clone(),
        })
        .await
        .expect("server");
    s.id
}

fn installation(t: &Team, s: &McpServerId, by: &User, name: &str) -> NewInstallation {
    NewInstallation {
        id: InstallationId::generate(),
        team_id: t.id.clone(),
        server_id: s.clone(),
        created_by: by.id.clone(),
        installation_name: name.into(),
        team_args: Some(serde_json::json!(["--verbose"])),
        team_env: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installations_create_list_delete_and_cascade() {
    let f = fixture().await;
    let sql = &f.db;
    let ada = user(&f, "ada").await;
    let t = team(&f, "acme", &ada).await;
    let s = server(&f, &ada, &t, "files").await;
    let service = McpInstallationService::new(f.database.clone());

    let b = service
        .create_installation(&installation(&t, &s, &ada, "b"))
        .await
        .expect("create");
    let a = service
        .create_installation(&installation(&t, &s, &ada, "a"))
        .await
        .expect("create");
    assert_eq!(a.team_args, Some(serde_json::json!(["--verbose"])));
    assert_eq!(a.settings, serde_json::json!({}));
    let listed: Vec<_> = service
        .list_team_installations(&t.id)
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(listed, vec![a.id.clone(), b.id.clone()]);
    let err = service
        .create_installation(&installation(&t, &McpServerId::generate(), &ada, "c"))
        .await
        .expect_err("unknown server");
    assert!(matches!(err, ServiceError::NotFound(_)), "{err:?}");

    // Deleting an installation takes its user configurations with it.
    sql.query(&format!(
        "INSERT INTO mcp_user_configurations (id, installation_id, user_id) VALUES ('c1', '{}', '{}')",
        a.id, ada.id
    ))
    .await;
    assert!(service.delete_installation(&a.id).await.expect("delete"));
    assert!(!service
        .delete_installation(&a.id)
        .await
        .expect("delete again"));
    assert_eq!(
        count(sql, "SELECT count(*) FROM mcp_user_configurations").await,
        0
    );
    assert_eq!(
        service
            .get_installation(&b.id)
            .await
            .expect("get")
            .map(|i| i.id),
        Some(b.id.clone())
    );

    // Deleting the team takes its installations, servers and memberships with it.
    assert!(f.teams.delete_team(&t.id).await.expect("delete team"));
    for table in [
        "mcp_server_installations",
        "mcp_servers",
        "team_memberships",
    ] {
        assert_eq!(
            count(sql, &format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_cascades_but_not_over_owned_teams() {
    let f = fixture().await;
    let sql = &f.db;
    let ada = user(&f, "ada").await;
    let bob = user(&f, "bob").await;
    let t = team(&f, "acme", &ada).await;
    f.teams
        .add_member(&t.id, &bob.id, TeamRole::User)
        .await
        .expect("add");
    let tokens = TokenService::new(f.database.clone());
    let grant = TokenGrant {
        user_id: bob.id.clone(),
        team_id: t.id.clone(),
        client_id: "cli".into(),
        scope: "mcp:read".into(),
    };
    tokens
        .issue_access_token(&grant, Duration::hours(1))
        .await
        .expect("token");

    // The owner cannot be deleted while owning a team (upstream deleted the team silently).
    let err = f.users.delete_user(&ada.id).await.expect_err("owner");
    assert!(
        matches!(&err, ServiceError::Conflict(m) if m.contains("is still referenced")),
        "{err:?}"
    );
    assert_eq!(count(sql, "SELECT count(*) FROM teams").await, 1);

    assert!(f.users.delete_user(&bob.id).await.expect("delete"));
    assert_eq!(count(sql, "SELECT count(*) FROM team_memberships").await, 1);
    assert_eq!(
        count(sql, "SELECT count(*) FROM oauth_access_tokens").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_issue_verify_revoke_and_expire() {
    let f = fixture().await;
    let sql = &f.db;
    let ada = user(&f, "ada").await;
    let t = team(&f, "acme", &ada).await;
    let tokens = TokenService::new(f.database.clone());
    let grant = TokenGrant {
        user_id: ada.id.clone(),
        team_id: t.id.clone(),
        client_id: "cli".into(),
        scope: "mcp:read".into(),
    };

    let live = tokens
        .issue_access_token(&grant, Duration::hours(1))
        .await
        .expect("issue");
    let plaintext = live.token.expose_secret().to_owned();
    assert_ne!(live.record.token_hash, plaintext, "only the hash is stored");
    assert_eq!(
        count(
            sql,
            &format!(
                "SELECT count(*) FROM oauth_access_tokens WHERE token_hash LIKE '%{plaintext}%'"
            )
        )
        .await,
        0
    );
    let found = tokens
        .verify_access_token(&plaintext)
        .await
        .expect("verify");
    assert_eq!(found.map(|t| t.id), Some(live.record.id.clone()));
    assert_eq!(
        tokens
            .verify_access_token("not-a-token")
            .await
            .expect("verify"),
        None
    );

    let expired = tokens
        .issue_access_token(&grant, Duration::seconds(-5))
        .await
        .expect("issue");
    assert_eq!(
        tokens
            .verify_access_token(expired.token.expose_secret())
            .await
            .expect("verify"),
        None
    );
    tokens
        .issue_access_token(&grant, Duration::seconds(-5))
        .await
        .expect("issue");
    assert_eq!(tokens.revoke_expired_tokens().await.expect("sweep"), 2);
    assert_eq!(tokens.revoke_expired_tokens().await.expect("sweep"), 0);

    assert!(tokens
        .revoke_access_token(&plaintext)
        .await
        .expect("revoke"));
    assert!(!tokens
        .revoke_access_token(&plaintext)
        .await
        .expect("revoke again"));
    assert_eq!(
        tokens
            .verify_access_token(&plaintext)
            .await
            .expect("verify"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_are_single_use_even_concurrently() {
    let f = fixture().await;
    let ada = user(&f, "ada").await;
    let t = team(&f, "acme", &ada).await;
    let tokens = TokenService::new(f.database.clone());
    let grant = TokenGrant {
        user_id: ada.id.clone(),
        team_id: t.id.clone(),
        client_id: "cli".into(),
        scope: "mcp:read".into(),
    };
    let issued = tokens
        .issue_refresh_token(&grant, Duration::days(30))
        .await
        .expect("issue");
    let plaintext = issued.token.expose_secret().to_owned();
    let uses = (0..6).map(|_| tokens.use_refresh_token(&plaintext));
    let results = futures_util::future::join_all(uses).await;
    let succeeded = results.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
    assert_eq!(succeeded, 1);
    assert!(tokens
        .revoke_refresh_token(&plaintext)
        .await
        .expect("revoke"));
    assert!(!tokens
        .revoke_refresh_token(&plaintext)
        .await
        .expect("revoke again"));
    assert_eq!(
        tokens
            .revoke_user_team_tokens(&ada.id, &t.id)
            .await
            .expect("revoke all"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_sync_restores_the_code_definitions() {
    let f = fixture().await;
    let sql = &f.db;
    let roles = RoleService::new(f.database.clone());
    sql.query("UPDATE roles SET permissions = '{}' WHERE id = 'global_admin'")
        .await;
    sql.query("DELETE FROM roles WHERE id = 'team_user'").await;
    assert_eq!(roles.sync_roles().await.expect("sync"), 4);
    let all = roles.list_roles().await.expect("list");
    let ids: Vec<_> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        ["global_admin", "global_user", "team_admin", "team_user"]
    );
    assert!(roles
        .has_permission(&"global_admin".into(), "settings.edit")
        .await
        .expect("perm"));
    assert!(!roles
        .has_permission(&"team_user".into(), "team.members.manage")
        .await
        .expect("perm"));
    assert!(!roles
        .has_permission(&"nobody".into(), "settings.edit")
        .await
        .expect("perm"));
    assert!(all
        .iter()
        .all(|r| r.is_system_role && r.permissions().count() > 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constraints_reject_bad_rows() {
    let f = fixture().await;
    let sql = &f.db;
    let ada = user(&f, "ada").await;
    let t = team(&f, "acme", &ada).await;
    let (client, conn) = tokio_postgres::connect(&sql.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let cases = [
        (format!("INSERT INTO team_memberships (id, team_id, user_id, role) VALUES ('m', '{}', '{}', 'owner')", t.id, ada.id), "23514"),
        ("INSERT INTO users (id, username, email, auth_type) VALUES ('x', 'x', 'x@x', 'password')".to_owned(), "23514"),
        (format!("UPDATE users SET role_id = 'team_admin' WHERE id = '{}'", ada.id), "23514"),
        ("INSERT INTO queue_jobs (id, type, payload, status) VALUES ('j', 't', '{}', 'done')".to_owned(), "23514"),
        ("INSERT INTO queue_jobs (id, type, payload, max_attempts) VALUES ('j', 't', '{}', 0)".to_owned(), "23514"),
        ("INSERT INTO global_settings (key, value, type) VALUES ('a.b', 'x', 'json')".to_owned(), "23514"),
        ("INSERT INTO global_settings (key, value) VALUES ('bad key!', 'x')".to_owned(), "23514"),
        (format!("UPDATE teams SET member_limit = -1 WHERE id = '{}'", t.id), "23514"),
        (format!("INSERT INTO user_preferences (id, user_id, preference_key, preference_value) VALUES ('p1', '{0}', 'k', 'v'), ('p2', '{0}', 'k', 'w')", ada.id), "23505"),
        (format!("INSERT INTO satellites (id, name, satellite_type, api_key_hash, created_by) VALUES ('s1', 'eu', 'global', 'h', '{0}'), ('s2', 'eu', 'global', 'h', '{0}')", ada.id), "23505"),
        ("INSERT INTO mcp_categories (id, name) VALUES ('c2', 'Default')".to_owned(), "23505"),
    ];
    for (statement, code) in cases {
        let err = client
            .batch_execute(&statement)
            .await
            .expect_err(&statement);
        assert_eq!(
            err.code().map(|c| c.code()),
            Some(code),
            "{statement}: {err}"
        );
    }
    // Team satellites may share a name across teams.
    client
        .batch_execute(&format!(
            "INSERT INTO satellites (id, name, satellite_type, team_id, api_key_hash, created_by) VALUES ('s3', 'eu', 'team', '{}', 'h', '{}')",
            t.id, ada.id
        ))
        .await
        .expect("team satellite");
    // The seeds exist.
    assert_eq!(
        count(
            sql,
            "SELECT count(*) FROM mcp_categories WHERE id = 'default-category-id'"
        )
        .await,
        1
    );
}
