//! A set-up server and an HTTP client that shows cookies and headers.

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

use crate::common::pg::TestDb;
use crate::common::server::{config, TestServer};

/// A test's database, data folder and set-up server.
pub struct Site {
    pub db: TestDb,
    pub dir: tempfile::TempDir,
    pub server: TestServer,
}

/// One answer.
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Reply {
    /// The `Set-Cookie` header.
    pub fn set_cookie(&self) -> &str {
        self.headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The session token the answer set.
    pub fn session(&self) -> String {
        let cookie = self.set_cookie();
        let value = cookie
            .strip_prefix("session=")
            .and_then(|rest| rest.split(';').next())
            .unwrap_or_else(|| panic!("no session cookie: {cookie:?}"));
        assert!(!value.is_empty(), "{cookie}");
        value.to_owned()
    }
}

impl Site {
    /// A new database, set up.
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// A new database, set up by a server whose configuration `adjust` changed.
    pub async fn with(adjust: impl FnOnce(&mut deploystack_backend::config::Config)) -> Self {
        let db = TestDb::new().await;
        let dir = tempfile::tempdir().expect("dir");
        let mut cfg = config(db.connection.clone(), dir.path());
        adjust(&mut cfg);
        let server = TestServer::start(&cfg).await;
        let (code, body) = server.setup().await;
        assert_eq!(code, 200, "{body}");
        Self { db, dir, server }
    }

    /// `POST path` with a JSON body and an optional session; a sign-up carries the setup
    /// grant cookie, as the browser that ran the setup would send it.
    pub async fn post(&self, path: &str, body: Value, session: Option<&str>) -> Reply {
        let grant = path == "/api/auth/email/register";
        self.send_with(
            self.server.http.post(self.url(path)).json(&body),
            session,
            grant,
        )
        .await
    }

    /// `GET path` with an optional session.
    pub async fn get(&self, path: &str, session: Option<&str>) -> Reply {
        self.send(self.server.http.get(self.url(path)), session)
            .await
    }

    /// Sends `request` with the session cookie (if any).
    pub async fn send(&self, request: reqwest::RequestBuilder, session: Option<&str>) -> Reply {
        self.send_with(request, session, false).await
    }

    /// Sends `request` with the session cookie (if any) and, with `grant`, the setup grant
    /// cookie.
    pub async fn send_with(
        &self,
        request: reqwest::RequestBuilder,
        session: Option<&str>,
        grant: bool,
    ) -> Reply {
        let mut cookies = vec!["theme=dark".to_owned()];
        cookies.extend(session.map(|token| format!("session={token}")));
        if grant {
            cookies.extend(self.server.grant_cookie());
        }
        let request = request.header(
            "cookie",
            HeaderValue::from_str(&cookies.join("; ")).expect("cookie"),
        );
        let resp = request.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("status {status}: not JSON ({e}): {text}"));
        Reply {
            status,
            body,
            headers,
        }
    }

    /// The server's address of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url)
    }

    /// Registers `username` (`<username>@example.com`, password `password-<username>`).
    pub async fn register(&self, username: &str) -> Reply {
        let reply = self
            .post(
                "/api/auth/email/register",
                json!({
                    "username": username,
                    "email": format!("{username}@example.com"),
                    "password": format!("password-{username}"),
                }),
                None,
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply
    }

    /// Signs in as `login` with `password`.
    pub async fn login(&self, login: &str, password: &str) -> Reply {
        self.post(
            "/api/auth/email/login",
            json!({"login": login, "password": password}),
            None,
        )
        .await
    }

    /// Runs SQL on the test database.
    pub async fn sql(&self, sql: &str) {
        self.db.execute(sql).await;
    }

    /// Rows of SQL on the test database.
    pub async fn rows(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        self.db.query(sql).await
    }
}
