//! The routes upstream's frontend drives, through a real listener: users, teams, members,
//! roles, preferences, the administration of accounts and teams, the catalog reads and CORS;
//! their bodies, errors and permissions (anonymous, user, team administrator, team owner,
//! global administrator), and the races upstream lost (limits, slugs, duplicates, the last
//! administrators).

#[path = "../common/mod.rs"]
mod common;
#[path = "../accounts/support.rs"]
mod support;

mod admin_people;
mod catalog;
mod cors;
mod members;
mod preferences;
mod races;
mod roles;
mod teams;
mod users;

use serde_json::{json, Value};
use support::{Reply, Site};

/// A set-up site with an administrator, and the sessions of `others` (plain accounts).
pub struct People {
    /// The site.
    pub site: Site,
    /// The administrator's session.
    pub admin: String,
    /// The other accounts' sessions, in order.
    pub sessions: Vec<String>,
}

impl People {
    /// `admin` and the accounts `others` (`<name>@example.com`, `password-<name>`).
    pub async fn new(others: &[&str]) -> Self {
        let site = Site::new().await;
        let admin = site.register("admin").await.session();
        let mut sessions = Vec::new();
        for name in others {
            sessions.push(site.register(name).await.session());
        }
        Self {
            site,
            admin,
            sessions,
        }
    }

    /// The session of the `n`-th other account.
    pub fn user(&self, n: usize) -> &str {
        &self.sessions[n]
    }

    /// `method path` with a JSON body and a session.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        session: Option<&str>,
    ) -> Reply {
        let url = self.site.url(path);
        let http = &self.site.server.http;
        let request = match method {
            "GET" => http.get(url),
            "POST" => http.post(url),
            "PUT" => http.put(url),
            "DELETE" => http.delete(url),
            other => panic!("method {other}"),
        };
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        self.site.send(request, session).await
    }

    /// The id of an account by username.
    pub async fn id_of(&self, username: &str) -> String {
        self.site
            .rows(&format!(
                "SELECT id FROM users WHERE username = '{username}'"
            ))
            .await[0]
            .get(0)
    }

    /// Creates a team as `session`; its id.
    pub async fn team(&self, session: &str, name: &str) -> String {
        let reply = self
            .call(
                "POST",
                "/api/teams",
                Some(json!({"name": name})),
                Some(session),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body["data"]["id"].as_str().expect("id").to_owned()
    }
}
