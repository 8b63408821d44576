//! Password hashes cross between upstream's hasher (`@node-rs/argon2` with upstream's options,
//! run by Node) and ours: an account migrated from upstream signs in here, and a password
//! set here verifies there.

use std::process::Command;

use crate::support::Site;

/// Runs `tests/fixtures/upstream_argon2.js` with `args`; its output.
fn upstream(args: &[&str]) -> String {
    let modules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/tools/node/node_modules"
    );
    assert!(
        std::path::Path::new(modules).join("@node-rs/argon2").is_dir(),
        "@node-rs/argon2 is missing: run ./scripts/test.sh, which installs it under target/tools/node"
    );
    let out = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/upstream_argon2.js"
        ))
        .args(args)
        .env("NODE_PATH", modules)
        .output()
        .expect("Node.js is needed for the upstream compatibility test (apt-get install nodejs)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashes_made_by_upstream_verify_here_and_ours_verify_there() {
    let site = Site::new().await;
    site.register("ann").await;
    let theirs = upstream(&["hash", "upstream password"]);
    assert!(
        theirs.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{theirs}"
    );
    site.sql(&format!(
        "INSERT INTO users (id, username, email, auth_type, hashed_password) \
         VALUES ('old', 'old', 'old@example.com', 'email_signup', '{theirs}')"
    ))
    .await;
    assert_eq!(
        site.login("old@example.com", "upstream password")
            .await
            .status,
        200
    );
    assert_eq!(
        site.login("old@example.com", "upstream Password")
            .await
            .status,
        400
    );

    let ours: String = site
        .rows("SELECT hashed_password FROM users WHERE username = 'ann'")
        .await[0]
        .get(0);
    assert_eq!(upstream(&["verify", &ours, "password-ann"]), "true");
    assert_eq!(upstream(&["verify", &ours, "password-Ann"]), "false");
    site.server.stop().await;
}
