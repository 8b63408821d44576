//! The session cookie: `session` (upstream's lucia name), `HttpOnly`, `Path=/`, `SameSite`
//! as configured, `Secure` when configured or when the request arrived over TLS. Like lucia's
//! `expires: false`, the cookie itself lives long (400 days, browsers' cap): the session row
//! decides when it ends, so an extension needs no new cookie.

use poem::Request;

use crate::config::{AccountSettings, SameSite};

/// The cookie's name.
pub const COOKIE_NAME: &str = "session";
/// The setup-grant cookie: proof that its browser ran the setup (see [`super::first_admin`]).
pub const GRANT_COOKIE: &str = "setup_grant";
/// The device cookie: proof that its browser signed in to an account before (see
/// [`super::device`]).
pub const DEVICE_COOKIE: &str = "device";

/// Browsers keep a cookie at most 400 days.
const MAX_AGE_SECONDS: u64 = 400 * 24 * 3600;
/// A device cookie is trusted for a year (see [`super::device`]).
pub const DEVICE_MAX_AGE_SECONDS: u64 = 365 * 24 * 3600;
/// Where the device and setup-grant cookies are sent: the account routes only.
const AUTH_PATH: &str = "/api/auth";

/// How the session cookie is written.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    same_site: SameSite,
    secure: Option<bool>,
}

impl CookiePolicy {
    /// As configured.
    pub fn new(settings: &AccountSettings) -> Self {
        Self {
            same_site: settings.same_site,
            secure: settings.secure,
        }
    }

    /// `Set-Cookie` for a new session.
    pub fn set(&self, token: &str, over_tls: bool) -> String {
        self.cookie(COOKIE_NAME, token, "/", MAX_AGE_SECONDS, over_tls)
    }

    /// `Set-Cookie` that removes the cookie.
    pub fn clear(&self, over_tls: bool) -> String {
        self.cookie(COOKIE_NAME, "", "/", 0, over_tls)
    }

    /// `Set-Cookie` of a device cookie: sent only to the sign-in routes, kept a year.
    pub fn device(&self, value: &str, over_tls: bool) -> String {
        self.cookie(
            DEVICE_COOKIE,
            value,
            AUTH_PATH,
            DEVICE_MAX_AGE_SECONDS,
            over_tls,
        )
    }

    /// `Set-Cookie` of the setup grant: `SameSite=Strict` whatever the session's policy (the
    /// browser that ran the setup is on this site), short-lived, for the sign-up route.
    pub fn grant(&self, value: &str, max_age: u64, over_tls: bool) -> String {
        let secure = self.secure.unwrap_or(over_tls);
        format!(
            "{GRANT_COOKIE}={value}; Path={AUTH_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
            if secure { "; Secure" } else { "" }
        )
    }

    fn cookie(&self, name: &str, value: &str, path: &str, max_age: u64, over_tls: bool) -> String {
        // SameSite=None is refused by browsers without Secure: it always goes with it.
        let secure = self.same_site == SameSite::None || self.secure.unwrap_or(over_tls);
        format!(
            "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={}{}",
            self.same_site.as_str(),
            if secure { "; Secure" } else { "" }
        )
    }
}

/// Whether `req` reached us over TLS: directly, or through a trusted proxy that says so
/// (as resolved into the request's [`crate::net::Client`]; a header from anyone else is not
/// believed).
pub fn over_tls(req: &Request) -> bool {
    req.extensions()
        .get::<crate::net::Client>()
        .map_or(*req.scheme() == poem::http::uri::Scheme::HTTPS, |c| {
            c.over_tls
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(same_site: SameSite, secure: Option<bool>) -> CookiePolicy {
        CookiePolicy { same_site, secure }
    }

    #[test]
    fn secure_follows_the_setting_the_transport_and_same_site_none() {
        let lax = policy(SameSite::Lax, None);
        assert_eq!(
            lax.set("t", false),
            "session=t; Path=/; Max-Age=34560000; HttpOnly; SameSite=Lax"
        );
        assert!(lax.set("t", true).ends_with("; Secure"));
        assert!(policy(SameSite::Lax, Some(true))
            .set("t", false)
            .ends_with("; Secure"));
        assert!(!policy(SameSite::Lax, Some(false))
            .set("t", true)
            .contains("Secure"));
        let none = policy(SameSite::None, None).set("t", false);
        assert!(
            none.contains("SameSite=None") && none.ends_with("; Secure"),
            "{none}"
        );
        assert_eq!(
            lax.clear(false),
            "session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            lax.device("d", false),
            "device=d; Path=/api/auth; Max-Age=31536000; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            none.split_once(';').map(|(_, rest)| rest),
            policy(SameSite::None, None)
                .set("x", false)
                .split_once(';')
                .map(|(_, rest)| rest)
        );
        assert_eq!(
            policy(SameSite::None, None).grant("g", 600, false),
            "setup_grant=g; Path=/api/auth; Max-Age=600; HttpOnly; SameSite=Strict"
        );
        assert!(lax.grant("g", 600, true).ends_with("; Secure"));
    }

    #[test]
    fn only_the_resolved_client_says_tls() {
        let mut req = Request::builder()
            .header("x-forwarded-proto", "https")
            .finish();
        assert!(!over_tls(&req), "a header alone is not believed");
        req.extensions_mut().insert(crate::net::Client {
            ip: None,
            over_tls: true,
            via_proxy: true,
        });
        assert!(over_tls(&req));
    }
}
