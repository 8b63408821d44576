//! Unique and check constraints of the schema.

use crate::{count, fixture, team, user};

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
