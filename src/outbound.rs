//! Outgoing HTTP to addresses that organisations choose (webhooks, and the
//! feeds that fetch import files): the one client they all use.
//!
//! A URL an administrator types must not become a way into the network the
//! server stands in (SSRF). Unless `ROLLCALL_OUTBOUND_ALLOW_PRIVATE` is set,
//! the client refuses any address in a private, loopback, link-local,
//! shared, multicast or unspecified range: a host name is resolved by
//! [`GuardedResolver`], which refuses it if any of its addresses is one, and
//! a literal address is checked before the request and after each redirect.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` may be reached from the public internet: not private,
/// loopback, link-local, shared (CGNAT), multicast, broadcast, documentation
/// or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local fc00::/7 and link-local fe80::/10.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                // Documentation 2001:db8::/32.
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                || v6 == Ipv6Addr::UNSPECIFIED)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || a == 0
        // Shared address space 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // Reserved 240.0.0.0/4.
        || a >= 240)
}

/// Why a URL may not be fetched.
pub fn refuse_url(url: &reqwest::Url, allow_private: bool) -> Option<String> {
    if !matches!(url.scheme(), "https" | "http") {
        return Some("only http and https URLs are fetched".to_owned());
    }
    if allow_private {
        return None;
    }
    if url.scheme() != "https" {
        return Some("the URL must be https".to_owned());
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) if name.eq_ignore_ascii_case("localhost") => {
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        }
        Some(url::Host::Domain(_)) => None,
        None => return Some("the URL has no host".to_owned()),
    };
    literal
        .filter(|ip| !is_public(*ip))
        .map(|ip| format!("{ip} is a private or local address"))
}

/// Resolves names, refusing one with any address that is not public.
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                return Err(format!(
                    "{host} resolves to {}, a private or local address",
                    bad.ip()
                )
                .into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// How outgoing requests to organisation-chosen URLs are made.
#[derive(Clone, Debug, Default)]
pub struct Outbound {
    /// `ROLLCALL_OUTBOUND_ALLOW_PRIVATE`.
    pub allow_private: bool,
    /// Certificates trusted beyond the public roots
    /// (`ROLLCALL_OUTBOUND_CA_FILE`): an internal CA's.
    pub roots: Vec<reqwest::Certificate>,
}

impl Outbound {
    pub fn from_config(config: &crate::config::Config) -> anyhow::Result<Self> {
        let roots = match &config.outbound_ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    anyhow::anyhow!("ROLLCALL_OUTBOUND_CA_FILE {}: {e}", path.display())
                })?;
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    anyhow::anyhow!("ROLLCALL_OUTBOUND_CA_FILE holds no PEM certificate: {e}")
                })?
            }
            None => Vec::new(),
        };
        Ok(Self {
            allow_private: config.outbound_allow_private,
            roots,
        })
    }

    /// Why `url` may not be fetched, if it may not.
    pub fn refuse(&self, url: &reqwest::Url) -> Option<String> {
        refuse_url(url, self.allow_private)
    }

    /// The client: `timeout` for the whole request, at most `redirects`
    /// redirects, each checked like the first URL.
    pub fn client(&self, timeout: Duration, redirects: usize) -> reqwest::Result<reqwest::Client> {
        let mut builder = builder(self.allow_private, timeout, redirects);
        for root in &self.roots {
            builder = builder.add_root_certificate(root.clone());
        }
        builder.build()
    }
}

fn builder(allow_private: bool, timeout: Duration, redirects: usize) -> reqwest::ClientBuilder {
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > redirects {
            attempt.error("too many redirects")
        } else if let Some(reason) = refuse_url(attempt.url(), allow_private) {
            attempt.error(reason)
        } else {
            attempt.follow()
        }
    });
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5).min(timeout))
        .timeout(timeout)
        .redirect(policy)
        .user_agent(concat!("Rollcall/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(GuardedResolver));
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_local_addresses_are_not_public() {
        for ip in [
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_refused_before_any_connection() {
        let refused = |u: &str| refuse_url(&u.parse().unwrap(), false);
        assert!(refused("https://169.254.169.254/latest/meta-data").is_some());
        assert!(refused("https://[::1]/").is_some());
        assert!(refused("https://localhost/hook").is_some());
        assert!(refused("http://hooks.example.org/").is_some());
        assert!(refused("ftp://hooks.example.org/").is_some());
        assert!(refused("https://hooks.example.org/x").is_none());
        assert!(refuse_url(&"http://127.0.0.1:9/".parse().unwrap(), true).is_none());
    }
}
