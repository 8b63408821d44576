//! The client of a request, resolved once by [`crate::api`]'s outermost layer and read by
//! whatever needs it: the sign-in limits, the request log, the cookie's `Secure` flag.

use std::net::{IpAddr, Ipv6Addr};

/// Who sent a request, as far as the trusted proxies let us tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The client's address (`None` for a request that came through no socket: tests).
    pub ip: Option<IpAddr>,
    /// Whether the client reached us (or the first trusted proxy) over TLS.
    pub over_tls: bool,
    /// Whether the request came through a trusted proxy (whose `X-Forwarded-Host` names the
    /// address the client used).
    pub via_proxy: bool,
}

impl Client {
    /// The key limits count this client under: its IPv4 address, or its IPv6 /64 (one
    /// subscriber's whole network, which it can pick addresses from at will).
    pub fn limit_key(&self) -> Option<String> {
        self.ip.map(address_key)
    }
}

/// [`Client::limit_key`] of `ip`.
pub fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let key = |s: &str| address_key(s.parse().expect("ip"));
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(key("192.0.2.1"), "192.0.2.1");
        let none = Client {
            ip: None,
            over_tls: false,
            via_proxy: false,
        };
        assert_eq!(none.limit_key(), None);
    }
}
