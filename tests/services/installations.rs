//! Installations and the cascades around them.

use chrono::Duration;
use deploystack_backend::db::models::{
    InstallationId, McpServerId, NewInstallation, NewMcpServer, Team, TeamRole, User,
};
use deploystack_backend::services::{
    McpInstallationService, McpServerService, ServiceError, TokenService,
};

use crate::{count, fixture, team, user, Fixture};

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
    let grant = crate::grant(&bob, &t);
    tokens
        .issue_access_token(&grant, Duration::hours(1))
        .await
        .expect("token");

    // The owner cannot be deleted while owning a team (upstream deleted the team silently).
    let err = f.users.delete_user(&ada.id).await.expect_err("owner");
    assert!(
        matches!(&err, ServiceError::Conflict(m) if m.starts_with("teams_owner_id_fkey")),
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
