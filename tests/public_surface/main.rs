//! The routes anyone can reach without an account, read as an attacker would, through a real
//! listener: the client behind trusted proxies, sign-in and sign-up limits shared by every
//! server on the database, device cookies, hashing that never takes the server, the first
//! administrator claimed rather than raced, cross-site writes, connections that never finish,
//! strict input, and what answers must not leak or keep.

#[path = "../common/mod.rs"]
mod common;
#[path = "../accounts/support.rs"]
mod support;

mod connections;
mod cross_site;
mod first_admin;
mod hashing;
mod leaks;
mod limits;
mod proxies;
mod strictness;

use deploystack_backend::net::TrustedProxies;
use serde_json::json;
use support::{Reply, Site};

/// A set-up site whose server believes forwarding headers from this test (127.0.0.1).
pub async fn behind_proxy() -> Site {
    Site::with(|cfg| {
        cfg.http.trusted_proxies = TrustedProxies::parse("127.0.0.1").expect("valid");
    })
    .await
}

/// Signs in as `login` with `password`, from the client `forwarded_for` names.
pub async fn login_from(site: &Site, forwarded_for: &str, login: &str, password: &str) -> Reply {
    let request = site
        .server
        .http
        .post(site.url("/api/auth/email/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"login": login, "password": password}));
    site.send(request, None).await
}

/// The `device` cookie's value an answer set.
pub fn device_cookie(reply: &Reply) -> String {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("device="))
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no device cookie: {:?}", reply.headers))
        .to_owned()
}

/// The keys counted in `auth_throttle`, with their counts.
pub async fn counts(site: &Site) -> Vec<(String, i32)> {
    site.rows("SELECT key, hits FROM auth_throttle ORDER BY key")
        .await
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}
