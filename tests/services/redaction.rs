//! `Debug` of rows and inputs that hold secrets prints `<redacted>` in their place and every
//! other field as usual: rows end up in logs, panic messages and test output.

use chrono::Utc;
use deploystack_backend::db::models::{
    AccessToken, AuthType, Installation, InstallationId, McpServerId, NewAccessToken,
    NewInstallation, NewRefreshToken, NewUser, RefreshToken, RoleId, TeamId, TokenId, User, UserId,
};
use serde_json::json;

use crate::registration;

/// `value`'s `Debug` contains none of `secrets`, all of `kept`, and the redaction marker.
fn assert_redacted(value: &impl std::fmt::Debug, secrets: &[&str], kept: &[&str]) {
    let text = format!("{value:?}");
    for secret in secrets {
        assert!(!text.contains(secret), "{secret:?} leaked: {text}");
    }
    for field in kept {
        assert!(text.contains(field), "{field:?} missing: {text}");
    }
    assert!(text.contains("<redacted>"), "{text}");
}

#[test]
fn users_hide_their_password_hash() {
    let user = User {
        id: UserId::from("u1"),
        username: "ada".into(),
        email: "ada@example.com".into(),
        auth_type: AuthType::EmailSignup,
        first_name: Some("Ada".into()),
        last_name: None,
        github_id: None,
        hashed_password: Some("scrypt-hash-secret".into()),
        role_id: Some(RoleId::from("global_admin")),
        email_verified: true,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    };
    let kept = [
        "u1",
        "ada@example.com",
        "global_admin",
        "email_verified: true",
    ];
    assert_redacted(&user, &["scrypt-hash-secret"], &kept);
    let new = NewUser {
        id: user.id.clone(),
        username: user.username.clone(),
        email: user.email.clone(),
        auth_type: user.auth_type,
        first_name: None,
        last_name: None,
        github_id: None,
        hashed_password: user.hashed_password.clone(),
        role_id: user.role_id.clone(),
        email_verified: true,
    };
    assert_redacted(&new, &["scrypt-hash-secret"], &kept);
    let input = registration("ada"); // hashed_password "argon2-hash"
    assert_redacted(&input, &["argon2-hash"], &["ada@example.com"]);
    // A missing hash still shows as missing.
    let none = User {
        hashed_password: None,
        ..user
    };
    assert!(format!("{none:?}").contains("hashed_password: None"));
}

#[test]
fn installations_hide_their_configuration_and_oauth_secrets() {
    let installation = Installation {
        id: InstallationId::from("i1"),
        team_id: TeamId::from("t1"),
        server_id: McpServerId::from("s1"),
        created_by: UserId::from("u1"),
        installation_name: "github".into(),
        installation_type: "global".into(),
        team_args: Some(json!(["--token", "args-secret"])),
        team_env: Some(json!({ "API_KEY": "env-secret" })),
        team_headers: Some(json!({ "Authorization": "Bearer header-secret" })),
        team_url_query_params: Some(json!({ "key": "query-secret" })),
        oauth_state: Some("state-secret".into()),
        oauth_code_verifier: Some("verifier-secret".into()),
        oauth_pending: true,
        oauth_pending_expires_at: None,
        oauth_client_id: Some("client-id-1".into()),
        oauth_client_secret: Some("client-secret".into()),
        oauth_provider_id: None,
        oauth_token_endpoint: Some("https://auth.example.com/token".into()),
        oauth_token_endpoint_auth_method: None,
        settings: json!({ "color": "blue" }),
        satellite_id: None,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        last_used_at: None,
    };
    let secrets = [
        "args-secret",
        "env-secret",
        "header-secret",
        "query-secret",
        "state-secret",
        "verifier-secret",
        "client-secret",
    ];
    let kept = ["i1", "github", "client-id-1", "auth.example.com", "blue"];
    assert_redacted(&installation, &secrets, &kept);
    let new = NewInstallation {
        id: installation.id.clone(),
        team_id: installation.team_id.clone(),
        server_id: installation.server_id.clone(),
        created_by: installation.created_by.clone(),
        installation_name: installation.installation_name.clone(),
        team_args: installation.team_args.clone(),
        team_env: installation.team_env.clone(),
    };
    assert_redacted(&new, &["args-secret", "env-secret"], &["i1", "github"]);
}

#[test]
fn tokens_hide_their_hash() {
    let (id, user, team) = (TokenId::from("k1"), UserId::from("u1"), TeamId::from("t1"));
    let (hash, at) = ("hash-secret".to_owned(), Utc::now());
    let kept = ["k1", "u1", "t1", "cli", "mcp:read"];
    let access = AccessToken {
        id: id.clone(),
        user_id: user.clone(),
        team_id: team.clone(),
        client_id: "cli".into(),
        scope: "mcp:read".into(),
        token_hash: hash.clone(),
        created_at: at,
        expires_at: at,
    };
    assert_redacted(&access, &[&hash], &kept);
    let refresh = RefreshToken {
        id: id.clone(),
        user_id: user.clone(),
        team_id: team.clone(),
        client_id: "cli".into(),
        scope: "mcp:read".into(),
        token_hash: hash.clone(),
        used: false,
        created_at: at,
        expires_at: at,
    };
    assert_redacted(&refresh, &[&hash], &kept);
    let new_access = NewAccessToken {
        id: id.clone(),
        user_id: user.clone(),
        team_id: team.clone(),
        client_id: "cli".into(),
        scope: "mcp:read".into(),
        token_hash: hash.clone(),
        expires_at: at,
    };
    assert_redacted(&new_access, &[&hash], &kept);
    let new_refresh = NewRefreshToken {
        id,
        user_id: user,
        team_id: team,
        client_id: "cli".into(),
        scope: "mcp:read".into(),
        token_hash: hash.clone(),
        expires_at: at,
    };
    assert_redacted(&new_refresh, &[&hash], &kept);
}
