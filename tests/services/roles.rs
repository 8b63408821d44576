//! The role sync.

use deploystack_backend::services::RoleService;

use crate::fixture;

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
