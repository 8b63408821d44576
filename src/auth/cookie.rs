//! The session cookie: `session` (upstream's lucia name), `HttpOnly`, `Path=/`, `SameSite`
//! as configured, `Secure` when configured or when the request arrived over TLS. Like lucia's
//! `expires: false`, the cookie itself lives long (400 days, browsers' cap): the session row
//! decides when it ends, so an extension needs no new cookie.

use poem::http::header;
use poem::Request;

use crate::config::{AccountSettings, SameSite};

/// The cookie's name.
pub const COOKIE_NAME: &str = "session";

/// Browsers keep a cookie at most 400 days.
const MAX_AGE_SECONDS: u64 = 400 * 24 * 3600;

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
        self.cookie(token, MAX_AGE_SECONDS, over_tls)
    }

    /// `Set-Cookie` that removes the cookie.
    pub fn clear(&self, over_tls: bool) -> String {
        self.cookie("", 0, over_tls)
    }

    fn cookie(&self, value: &str, max_age: u64, over_tls: bool) -> String {
        // SameSite=None is refused by browsers without Secure: it always goes with it.
        let secure = self.same_site == SameSite::None || self.secure.unwrap_or(over_tls);
        format!(
            "{COOKIE_NAME}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite={}{}",
            self.same_site.as_str(),
            if secure { "; Secure" } else { "" }
        )
    }
}

/// Whether `req` reached us over TLS: directly, or through a proxy that says so.
pub fn over_tls(req: &Request) -> bool {
    req.uri().scheme_str() == Some("https")
        || req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
        || req
            .headers()
            .get(header::FORWARDED)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"))
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
    }

    #[test]
    fn a_proxy_saying_https_counts_as_tls() {
        let req = Request::builder()
            .header("x-forwarded-proto", "HTTPS")
            .finish();
        assert!(over_tls(&req));
        let req = Request::builder()
            .header("forwarded", "for=1.2.3.4;proto=https")
            .finish();
        assert!(over_tls(&req));
        assert!(!over_tls(&Request::builder().finish()));
    }
}
