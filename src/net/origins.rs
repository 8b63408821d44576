//! Browser origins allowed to call this server with credentials: the frontend's
//! (`DEPLOYSTACK_FRONTEND_URL`) and upstream's local development origins. CORS answers them
//! and the cross-site check lets their state-changing requests through.

/// Origins upstream's backend always allows (its Vite dev and preview servers, and its own
/// port).
pub const DEVELOPMENT_ORIGINS: [&str; 4] = [
    "http://localhost:5173",
    "http://localhost:5174",
    "http://localhost:3000",
    "http://localhost:4173",
];

/// The allowed origins, normalized (`scheme://host[:port]`, lower case, default port
/// dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<String>);

impl Default for AllowedOrigins {
    fn default() -> Self {
        Self(
            DEVELOPMENT_ORIGINS
                .iter()
                .map(|o| (*o).to_owned())
                .collect(),
        )
    }
}

impl AllowedOrigins {
    /// Upstream's development origins plus the frontend URLs in `text` (separated by
    /// commas; a path after the origin is ignored).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut origins = Self::default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let origin = normalize(item).ok_or_else(|| {
                format!("{item:?} is not an http(s) URL such as https://app.example.com")
            })?;
            if !origins.0.contains(&origin) {
                origins.0.push(origin);
            }
        }
        Ok(origins)
    }

    /// Whether a request's `Origin` header value is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        normalize(origin).is_some_and(|o| self.0.contains(&o))
    }

    /// The origins, normalized.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// `scheme://host[:port]` of an http(s) URL in lower case without its default port, or
/// `None` for anything else (`null`, other schemes, user information).
pub fn normalize(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    let (host, port) = split_authority(&authority)?;
    if host.is_empty() || authority.contains('@') {
        return None;
    }
    Some(match port {
        Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// `(host, port)` of `host`, `host:port`, `[v6]` or `[v6]:port`; `None` for a port that is
/// not a number.
pub fn split_authority(authority: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        let host = &authority[..inner.len() + 2];
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_compared_normalized() {
        let o = AllowedOrigins::parse("https://App.example.com/dashboard, http://[::1]:8080")
            .expect("valid");
        assert!(o.allows("https://app.example.com"));
        assert!(o.allows("https://app.example.com:443"));
        assert!(!o.allows("http://app.example.com"));
        assert!(!o.allows("https://app.example.com:8443"));
        assert!(o.allows("http://[::1]:8080"));
        assert!(o.allows("http://localhost:5173"));
        assert!(!o.allows("null"));
        assert!(!o.allows("https://app.example.com.evil.io"));
        for bad in [
            "app.example.com",
            "ftp://x.io",
            "https://u@x.io",
            "https://x.io:http",
        ] {
            assert!(AllowedOrigins::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(AllowedOrigins::default().iter().count(), 4);
    }
}
