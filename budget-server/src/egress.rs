//! Where the proxy may connect: never to link-local or cloud-metadata addresses (unless
//! `ALLOW_LINK_LOCAL_UPSTREAMS=true`).
//!
//! Whoever can create a limiter chooses its `base_url`; a limiter pointed at
//! `http://169.254.169.254/` would let code holders read the host's cloud credentials. Two
//! checks keep that door shut: the admin API refuses such a `base_url` when it is an IP
//! literal, and the proxy's DNS resolver drops such addresses from every lookup, so a host
//! name that resolves to one (`metadata.google.internal`, or a name the attacker controls)
//! cannot reach it either.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use budget_core::limiter::ValidationError;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use url::Url;

/// Link-local ranges and the cloud metadata addresses that live outside them.
pub fn is_metadata_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_metadata_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_metadata_v4(v4);
            }
            // fe80::/10 link-local, and AWS's IPv6 metadata endpoint fd00:ec2::254.
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

fn is_metadata_v4(v4: Ipv4Addr) -> bool {
    // 169.254.0.0/16 (AWS, GCP, Azure, OpenStack… metadata at 169.254.169.254) and Alibaba
    // Cloud's 100.100.100.200.
    v4.is_link_local() || v4 == Ipv4Addr::new(100, 100, 100, 200)
}

/// Refuse a `base_url` whose host is a link-local or metadata IP literal, unless allowed.
pub fn check_base_url(url: &str, allow_link_local: bool) -> Result<(), ValidationError> {
    if allow_link_local {
        return Ok(());
    }
    let Ok(url) = Url::parse(url.trim()) else {
        return Ok(()); // the limiter's own validation reports the bad URL
    };
    if host_is_metadata(&url) {
        return Err(ValidationError::new(
            "base_url",
            "points at a link-local or cloud-metadata address; set ALLOW_LINK_LOCAL_UPSTREAMS=true on the server to allow it",
        ));
    }
    Ok(())
}

/// Whether `url`'s host is a link-local or metadata IP literal.
pub fn host_is_metadata(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => is_metadata_address(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_metadata_address(IpAddr::V6(ip)),
        _ => false,
    }
}

/// The system resolver, minus link-local and metadata addresses (see the module docs).
#[derive(Clone)]
pub struct GuardedResolver {
    inner: GaiResolver,
    allow_link_local: bool,
}

impl GuardedResolver {
    /// The system resolver; `allow_link_local` turns the filter off.
    pub fn new(allow_link_local: bool) -> Self {
        GuardedResolver {
            inner: GaiResolver::new(),
            allow_link_local,
        }
    }
}

impl tower::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tower::Service::<Name>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow = self.allow_link_local;
        let lookup = tower::Service::<Name>::call(&mut self.inner, name.clone());
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = lookup
                .await?
                .filter(|a| allow || !is_metadata_address(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{name} resolves only to link-local or cloud-metadata addresses, which the proxy refuses (ALLOW_LINK_LOCAL_UPSTREAMS)"
                    ),
                ));
            }
            Ok(addrs.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_addresses() {
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "100.100.100.200",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
        ] {
            assert!(is_metadata_address(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["127.0.0.1", "10.0.0.1", "8.8.8.8", "::1", "2001:db8::1"] {
            assert!(!is_metadata_address(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn base_urls() {
        assert!(check_base_url("http://169.254.169.254/latest", false).is_err());
        assert!(check_base_url("http://[fd00:ec2::254]", false).is_err());
        assert!(check_base_url("http://169.254.169.254", true).is_ok());
        assert!(check_base_url("https://api.openai.com", false).is_ok());
        assert!(check_base_url("http://127.0.0.1:9000", false).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_drops_metadata_addresses() {
        use std::str::FromStr;
        let mut r = GuardedResolver::new(false);
        // `localhost` resolves to loopback: kept.
        let name = Name::from_str("localhost").unwrap();
        let addrs: Vec<_> = tower::Service::call(&mut r, name).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }
}
