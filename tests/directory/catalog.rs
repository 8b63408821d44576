//! The dashboard's catalog reads: a team's installations, the servers one may see.

use serde_json::json;

use crate::People;

/// A category, two servers (one featured, one team-only of `team`) and an installation of the
/// featured one in `team` with an instance of its creator.
async fn catalog(p: &People, team: &str, creator: &str) {
    p.site
        .sql(&format!(
            "INSERT INTO mcp_categories (id, name, icon) VALUES ('cat1', 'Developer tools', 'code');
             INSERT INTO mcp_servers (id, name, slug, description, language, runtime, visibility, created_by,
                                      transport_type, category_id, tags, featured, github_stars)
             VALUES ('srv-a', 'Alpha', 'alpha', 'Reads files', 'typescript', 'node', 'global', '{creator}', 'stdio', 'cat1', '{{files,fs}}', true, 0),
                    ('srv-b', 'Beta', 'beta', 'Team tool', 'python', 'python', 'team', '{creator}', 'http', NULL, '{{}}', false, 12);
             UPDATE mcp_servers SET owner_team_id = '{team}' WHERE id = 'srv-b';
             INSERT INTO mcp_server_installations (id, team_id, server_id, created_by, installation_name, installation_type)
             VALUES ('inst-1', '{team}', 'srv-a', '{creator}', 'Files', 'team');
             INSERT INTO mcp_server_instances (id, installation_id, user_id, status)
             VALUES ('i1', 'inst-1', '{creator}', 'online');"
        ))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teams_installations_and_the_visible_servers_in_upstreams_shapes() {
    let p = People::new(&["ann", "bob"]).await;
    let team = p.team(p.user(0), "Tools").await;
    let ann = p.id_of("ann").await;
    catalog(&p, &team, &ann).await;
    let path = format!("/api/teams/{team}/mcp/installations");
    let list = p.call("GET", &path, None, Some(p.user(0))).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let first = &list.body["data"][0];
    assert_eq!(first["installation_name"], "Files");
    assert_eq!(first["status"], "online");
    assert_eq!(first["server"]["id"], "srv-a");
    assert_eq!(first["server"]["runtime"], "node");
    assert_eq!(first["last_health_check_at"], json!(null));
    assert!(first.get("status_summary").is_none());
    let stats = p
        .call(
            "GET",
            &format!("{path}?include_stats=true"),
            None,
            Some(p.user(0)),
        )
        .await;
    assert_eq!(stats.body["data"][0]["status_summary"]["online"], 1);
    assert_eq!(
        p.call("GET", &path, None, Some(p.user(1))).await.body["error"],
        "You are not a member of this team"
    );
    assert_eq!(p.call("GET", &path, None, Some(&p.admin)).await.status, 200);
    let usage = p
        .call(
            "GET",
            &format!("/api/teams/{team}/usage"),
            None,
            Some(p.user(0)),
        )
        .await;
    assert_eq!(usage.body["data"]["total_installed_mcp_servers"], 1);
    assert_eq!(usage.body["data"]["non_http_mcp_servers"], 1);

    let featured = p
        .call(
            "GET",
            "/api/mcp/servers?featured=true&limit=6&offset=0",
            None,
            Some(p.user(1)),
        )
        .await;
    assert_eq!(featured.status, 200, "{}", featured.body);
    let servers = featured.body["data"]["servers"]
        .as_array()
        .expect("servers");
    assert_eq!(servers.len(), 1);
    assert_eq!(
        servers[0]["category"],
        json!({"id": "cat1", "name": "Developer tools", "icon": "code"})
    );
    assert_eq!(servers[0]["github_stars"], json!(null), "0 is none");
    assert_eq!(
        featured.body["data"]["pagination"],
        json!({"total": 1, "limit": 6, "offset": 0, "has_more": false})
    );
    // The team server is seen by its team and administrators only.
    let count = |session: String| {
        let p = &p;
        async move {
            p.call("GET", "/api/mcp/servers", None, Some(&session))
                .await
                .body["data"]["pagination"]["total"]
                .clone()
        }
    };
    assert_eq!(count(p.user(1).to_owned()).await, 1);
    assert_eq!(count(p.user(0).to_owned()).await, 2);
    assert_eq!(count(p.admin.clone()).await, 2);
    let search = p
        .call("GET", "/api/mcp/servers?search=FS", None, Some(p.user(1)))
        .await;
    assert_eq!(
        search.body["data"]["servers"][0]["id"], "srv-a",
        "tags are searched"
    );
    assert_eq!(
        p.call("GET", "/api/mcp/servers?limit=0", None, Some(p.user(1)))
            .await
            .status,
        400
    );
    assert_eq!(
        p.call("GET", "/api/mcp/servers", None, None).await.status,
        401
    );
    p.site.server.stop().await;
}
