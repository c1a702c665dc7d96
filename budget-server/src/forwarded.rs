//! Who is on the other end behind a reverse proxy: `TRUSTED_PROXIES` and the forwarding
//! headers.
//!
//! Forwarding headers are believed only when the connection comes from a trusted proxy (an
//! address inside one of the `TRUSTED_PROXIES` CIDRs). Then the client is the rightmost hop
//! of `X-Forwarded-For` (or of the `for=` values of `Forwarded`) that is not itself a trusted
//! proxy: hops to its left were written by the client and prove nothing. Both headers are
//! read, each on its own: a proxy writes one of them, and the other, if present, came from the
//! client. Callers that count per client (the login throttle) count against every address
//! found, so a header the proxy leaves alone cannot be used to pick a fresh bucket.

use std::net::IpAddr;
use std::str::FromStr;

use http::HeaderMap;

/// An IP network, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a single host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpCidr {
    network: IpAddr,
    prefix: u8,
}

/// A `TRUSTED_PROXIES` entry that is not a CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP address or CIDR like 10.0.0.0/8")]
pub struct BadCidr(pub String);

impl FromStr for IpCidr {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Self, BadCidr> {
        let bad = || BadCidr(s.to_owned());
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(IpCidr { network, prefix })
    }
}

impl std::fmt::Display for IpCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl IpCidr {
    /// Whether `ip` is inside this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:10.0.0.1`) as IPv4; anything else as is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Where a client address was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The connection's peer address.
    Peer,
    /// `X-Forwarded-For`, from a trusted proxy.
    XForwardedFor,
    /// `Forwarded: for=`, from a trusted proxy.
    Forwarded,
}

/// Whether the connection comes from a trusted proxy.
pub fn is_trusted(peer: Option<IpAddr>, trusted: &[IpCidr]) -> bool {
    peer.is_some_and(|p| trusted.iter().any(|c| c.contains(p)))
}

/// The client addresses of a request: the peer's, or — when the peer is a trusted proxy and
/// sent forwarding headers — the client named by each header (one or two entries, tagged
/// with their [`Source`]). `None` when the server does not know the peer.
pub fn client_addrs(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpCidr],
) -> Vec<(Source, Option<IpAddr>)> {
    if !is_trusted(peer, trusted) {
        return vec![(Source::Peer, peer)];
    }
    let mut found = Vec::with_capacity(2);
    let xff = header_values(headers, "x-forwarded-for").map(|v| parse_node(v.trim()));
    if let Some(ip) = rightmost_untrusted(xff, trusted) {
        found.push((Source::XForwardedFor, ip));
    }
    let fwd = header_values(headers, "forwarded").filter_map(|element| {
        element
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
            .map(|(_, v)| parse_node(v.trim().trim_matches('"')))
    });
    if let Some(ip) = rightmost_untrusted(fwd, trusted) {
        found.push((Source::Forwarded, ip));
    }
    if found.is_empty() {
        found.push((Source::Peer, peer));
    }
    found
}

/// Whether the request reached the first proxy over TLS, as a trusted proxy reports it
/// (`X-Forwarded-Proto: https` or `Forwarded: proto=https`, the last value of each).
pub fn forwarded_https(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpCidr]) -> bool {
    if !is_trusted(peer, trusted) {
        return false;
    }
    let xfp = header_values(headers, "x-forwarded-proto").last();
    let fwd = header_values(headers, "forwarded")
        .last()
        .and_then(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("proto"))
                .map(|(_, v)| v.trim().trim_matches('"'))
        });
    [xfp, fwd]
        .into_iter()
        .flatten()
        .any(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// Every comma-separated value of every instance of a header, in order.
fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
}

/// One hop: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:5678`; `None` for
/// `unknown`, obfuscated names and anything else.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok().map(canonical);
    }
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .map(canonical)
}

/// Walk hops from the right, skipping trusted proxies: the first other hop is the client
/// (`Some(None)` when that hop is not an address); all trusted → the leftmost; no hops →
/// `None`.
fn rightmost_untrusted(
    hops: impl Iterator<Item = Option<IpAddr>>,
    trusted: &[IpCidr],
) -> Option<Option<IpAddr>> {
    let hops: Vec<Option<IpAddr>> = hops.collect();
    let mut leftmost = None;
    for hop in hops.into_iter().rev() {
        match hop {
            Some(ip) if trusted.iter().any(|c| c.contains(ip)) => leftmost = Some(hop),
            other => return Some(other),
        }
    }
    leftmost
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(s: &[&str]) -> Vec<IpCidr> {
        s.iter().map(|c| c.parse().unwrap()).collect()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn cidrs_parse_and_match() {
        let c: IpCidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.255.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let host: IpCidr = "192.0.2.7".parse().unwrap();
        assert!(host.contains("192.0.2.7".parse().unwrap()));
        assert!(!host.contains("192.0.2.8".parse().unwrap()));
        let v6: IpCidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        let all: IpCidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        for bad in ["10.0.0.0/33", "10.0.0/8", "x", "", "::/129", "10.0.0.0/"] {
            assert!(bad.parse::<IpCidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn untrusted_peers_are_taken_at_their_word_only() {
        let h = headers(&[("x-forwarded-for", "198.51.100.1")]);
        let got = client_addrs(ip("203.0.113.5"), &h, &cidrs(&["10.0.0.0/8"]));
        assert_eq!(got, vec![(Source::Peer, ip("203.0.113.5"))]);
        assert_eq!(client_addrs(None, &h, &[]), vec![(Source::Peer, None)]);
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = cidrs(&["10.0.0.0/8"]);
        // The client forged the first entry; the proxy appended the real address.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.3")]);
        let got = client_addrs(ip("10.0.0.2"), &h, &t);
        assert_eq!(got, vec![(Source::XForwardedFor, ip("198.51.100.7"))]);
        // Several header lines count as one list.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "[2001:db8::5]:443"),
        ]);
        let got = client_addrs(ip("10.0.0.2"), &h, &t);
        assert_eq!(got, vec![(Source::XForwardedFor, ip("2001:db8::5"))]);
        // Only proxies: the leftmost.
        let h = headers(&[("x-forwarded-for", "10.0.0.9, 10.0.0.3")]);
        assert_eq!(
            client_addrs(ip("10.0.0.2"), &h, &t),
            vec![(Source::XForwardedFor, ip("10.0.0.9"))]
        );
        // A hop that is not an address is a client we cannot name.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, unknown")]);
        assert_eq!(
            client_addrs(ip("10.0.0.2"), &h, &t),
            vec![(Source::XForwardedFor, None)]
        );
        // No header: the proxy itself.
        assert_eq!(
            client_addrs(ip("10.0.0.2"), &HeaderMap::new(), &t),
            vec![(Source::Peer, ip("10.0.0.2"))]
        );
    }

    #[test]
    fn forwarded_is_read_beside_x_forwarded_for() {
        let t = cidrs(&["10.0.0.0/8"]);
        let h = headers(&[(
            "forwarded",
            r#"for=192.0.2.60;proto=http, For="[2001:db8:cafe::17]:4711";by=10.0.0.1"#,
        )]);
        assert_eq!(
            client_addrs(ip("10.0.0.2"), &h, &t),
            vec![(Source::Forwarded, ip("2001:db8:cafe::17"))]
        );
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=192.0.2.1"),
        ]);
        assert_eq!(
            client_addrs(ip("10.0.0.2"), &h, &t),
            vec![
                (Source::XForwardedFor, ip("198.51.100.7")),
                (Source::Forwarded, ip("192.0.2.1"))
            ]
        );
    }

    #[test]
    fn https_is_believed_from_trusted_proxies_only() {
        let t = cidrs(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-proto", "https")]);
        assert!(forwarded_https(ip("10.0.0.2"), &h, &t));
        assert!(!forwarded_https(ip("192.0.2.2"), &h, &t));
        let h = headers(&[("forwarded", "for=1.2.3.4;proto=https")]);
        assert!(forwarded_https(ip("10.0.0.2"), &h, &t));
        let h = headers(&[("x-forwarded-proto", "http")]);
        assert!(!forwarded_https(ip("10.0.0.2"), &h, &t));
    }
}
