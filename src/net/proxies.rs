//! Which TCP peers are reverse proxies, and who the client behind them is. Behind nginx,
//! Traefik or a cloud load balancer every connection comes from the proxy; the client is
//! named by the forwarding headers, which anyone can also send. So the headers are read
//! only from a trusted peer, and only as far back as trusted hops go: the client is the
//! rightmost `X-Forwarded-For` (or `Forwarded: for=`) entry that is not a trusted proxy
//! itself. Entries further left were written by the client and prove nothing.

use std::net::IpAddr;

use ipnet::IpNet;
use poem::http::HeaderMap;

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Addresses or CIDR ranges separated by commas (`10.0.0.0/8, ::1`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => item.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                    format!("{item:?} is not an IP address or a CIDR range (10.0.0.0/8, fd00::/8)")
                })?,
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request from `peer` carrying `headers`: `peer` itself unless it is
    /// trusted; then, walking the forwarding entries from the right, the first that is not
    /// trusted (or the last readable one, when every hop is trusted).
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        for hop in forwarded_chain(headers).into_iter().rev() {
            let Some(hop) = hop else { break };
            client = hop.to_canonical();
            if !self.contains(client) {
                break;
            }
        }
        client
    }

    /// Whether a request from `peer` says it reached the first proxy over TLS; `false` for
    /// an untrusted peer, whatever it says.
    pub fn forwarded_tls(&self, peer: IpAddr, headers: &HeaderMap) -> bool {
        self.contains(peer) && forwarded_proto_is_https(headers)
    }
}

/// The hops of `X-Forwarded-For` (or, without it, of `Forwarded`), left to right; `None`
/// for an entry that names no address (`unknown`, an obfuscated name, garbage).
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<&str> = values(headers, "x-forwarded-for").collect();
    if !xff.is_empty() {
        return xff
            .iter()
            .flat_map(|v| v.split(','))
            .map(|hop| node_address(hop.trim()))
            .collect();
    }
    values(headers, "forwarded")
        .flat_map(split_elements)
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(key, _)| key.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, value)| node_address(value.trim().trim_matches('"')))
        })
        .collect()
}

/// The first proxy's protocol: the leftmost `X-Forwarded-Proto` value, else `Forwarded`'s
/// first `proto=`.
fn forwarded_proto_is_https(headers: &HeaderMap) -> bool {
    if let Some(first) = values(headers, "x-forwarded-proto").next() {
        return first
            .split(',')
            .next()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    }
    values(headers, "forwarded")
        .flat_map(split_elements)
        .find_map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(key, _)| key.trim().eq_ignore_ascii_case("proto"))
                .map(|(_, v)| v.trim().trim_matches('"').eq_ignore_ascii_case("https"))
        })
        .unwrap_or(false)
}

fn values<'h>(headers: &'h HeaderMap, name: &str) -> impl Iterator<Item = &'h str> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok())
}

/// `Forwarded`'s comma-separated elements, commas inside quoted strings kept.
fn split_elements(value: &str) -> Vec<&str> {
    let mut elements = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                elements.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    elements.push(&value[start..]);
    elements
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]`, `[::1]:5678`.
fn node_address(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = text.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    text.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                poem::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").expect("valid");
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(proxies.client_of(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        assert!(!proxies.forwarded_tls(ip("203.0.113.9"), &h));
        let none = TrustedProxies::default();
        assert_eq!(none.client_of(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.1").expect("valid");
        // The client prepended a fake address; the proxies appended the real ones.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
            ("x-forwarded-for", "192.168.1.1"),
        ]);
        assert_eq!(proxies.client_of(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // Every hop trusted: the leftmost readable one.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 192.168.1.1")]);
        assert_eq!(proxies.client_of(ip("10.0.0.2"), &h), ip("10.9.9.9"));
        // An unreadable hop stops the walk at the last trusted one seen.
        let h = headers(&[("x-forwarded-for", "198.51.100.7, junk, 10.1.1.1")]);
        assert_eq!(proxies.client_of(ip("10.0.0.2"), &h), ip("10.1.1.1"));
        // No header: the proxy itself.
        assert_eq!(
            proxies.client_of(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn forwarded_is_read_when_x_forwarded_for_is_absent() {
        let proxies = TrustedProxies::parse("::1").expect("valid");
        let h = headers(&[(
            "forwarded",
            "for=\"[2001:db8::1]:4711\";proto=https, for=unknown;by=x",
        )]);
        // `unknown` stops the walk: the proxy is the client.
        assert_eq!(proxies.client_of(ip("::1"), &h), ip("::1"));
        let h = headers(&[("forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43")]);
        assert_eq!(proxies.client_of(ip("::1"), &h), ip("192.0.2.60"));
        assert!(proxies.forwarded_tls(ip("::1"), &h));
        let h = headers(&[("forwarded", "for=\"[2001:db8::1]:4711\"")]);
        assert_eq!(proxies.client_of(ip("::1"), &h), ip("2001:db8::1"));
    }

    #[test]
    fn the_first_protocol_counts_and_mapped_addresses_are_canonical() {
        let proxies = TrustedProxies::parse("127.0.0.1").expect("valid");
        let mapped = ip("::ffff:127.0.0.1");
        let h = headers(&[("x-forwarded-proto", "https, http")]);
        assert!(proxies.forwarded_tls(mapped, &h));
        let h = headers(&[("x-forwarded-proto", "http")]);
        assert!(!proxies.forwarded_tls(mapped, &h));
        let h = headers(&[("x-forwarded-for", "[2001:db8::5]:80")]);
        assert_eq!(proxies.client_of(mapped, &h), ip("2001:db8::5"));
        assert!(TrustedProxies::parse("1.2.3.4/40").is_err());
        assert!(TrustedProxies::parse("").expect("empty").is_empty());
    }
}
