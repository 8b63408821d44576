//! OAuth access and refresh tokens.

use chrono::Duration;
use deploystack_backend::services::TokenService;
use secrecy::ExposeSecret;

use crate::{count, fixture, team, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_issue_verify_revoke_and_expire() {
    let f = fixture().await;
    let sql = &f.db;
    let ada = user(&f, "ada").await;
    let t = team(&f, "acme", &ada).await;
    let tokens = TokenService::new(f.database.clone());
    let grant = crate::grant(&ada, &t);

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
    let grant = crate::grant(&ada, &t);
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
async fn revoking_a_users_team_tokens_is_all_or_nothing() {
    let f = fixture().await;
    let sql = &f.db;
    let ada = user(&f, "ada").await;
    let t = team(&f, "acme", &ada).await;
    let tokens = TokenService::new(f.database.clone());
    let grant = crate::grant(&ada, &t);
    tokens
        .issue_access_token(&grant, Duration::hours(1))
        .await
        .expect("access");
    tokens
        .issue_refresh_token(&grant, Duration::days(30))
        .await
        .expect("refresh");

    // The refresh tokens cannot go after the access tokens went: nothing may be revoked,
    // or a refresh token would outlive the revocation and mint new access tokens.
    sql.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$; \
         CREATE TRIGGER refuse BEFORE DELETE ON oauth_refresh_tokens FOR EACH ROW EXECUTE FUNCTION refuse()",
    )
    .await;
    tokens
        .revoke_user_team_tokens(&ada.id, &t.id)
        .await
        .expect_err("trigger");
    assert_eq!(
        count(sql, "SELECT count(*) FROM oauth_access_tokens").await,
        1
    );
    assert_eq!(
        count(sql, "SELECT count(*) FROM oauth_refresh_tokens").await,
        1
    );

    sql.execute("DROP TRIGGER refuse ON oauth_refresh_tokens")
        .await;
    assert_eq!(
        tokens
            .revoke_user_team_tokens(&ada.id, &t.id)
            .await
            .expect("revoke"),
        2
    );
}
