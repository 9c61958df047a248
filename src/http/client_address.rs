//! Who a request comes from when load balancers stand in between.
//!
//! Behind a balancer every connection comes from the balancer, so the peer
//! address alone would put all of a hospital's staff behind one address: one
//! login lockout per address would lock them all out, and the audit trail would
//! say nothing of where anyone was. Proxies listed in `ROLLCALL_TRUSTED_PROXIES`
//! are believed about the address they append to `X-Forwarded-For`; nobody else
//! is, since any client can send that header with whatever it likes in it.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// The client's address: the peer's, unless the peer is a trusted proxy, in
/// which case the `X-Forwarded-For` hops are walked from the right (the hop the
/// trusted proxy itself appended) past every trusted proxy, and the first
/// address that is not one is the client. A hop that is not an address ends the
/// walk at the last address known good: what lies left of it is unverifiable.
pub fn client_address(
    peer: Option<IpAddr>,
    trusted: &[IpNet],
    forwarded_for: &[&str],
) -> Option<IpAddr> {
    let trusts = |ip: IpAddr| trusted.iter().any(|net| net.contains(&ip));
    let mut client = peer?.to_canonical();
    let hops = forwarded_for
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .rev();
    for hop in hops {
        if !trusts(client) {
            break;
        }
        match parse_hop(hop) {
            Some(ip) => client = ip,
            None => break,
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, parse_network};

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn believes_only_trusted_proxies_and_walks_past_each_of_them() {
        let trusted: Vec<IpNet> = ["10.0.0.0/8", "192.0.2.1", "fd00::/8"]
            .into_iter()
            .map(|t| parse_network(t).unwrap())
            .collect();
        let cases: &[(&str, &[&str], &str)] = &[
            // No proxy in between: the header is anyone's to forge.
            ("203.0.113.9", &["198.51.100.1"], "203.0.113.9"),
            // One balancer: the address it appended.
            ("10.0.0.5", &["203.0.113.9"], "203.0.113.9"),
            // What the client wrote to the left of the real hop is ignored.
            ("10.0.0.5", &["6.6.6.6, 203.0.113.9"], "203.0.113.9"),
            // Two proxies, the header split over two lines.
            ("10.0.0.5", &["203.0.113.9", "192.0.2.1"], "203.0.113.9"),
            // Every hop trusted: the leftmost.
            ("10.0.0.5", &["10.9.9.9, 10.8.8.8"], "10.9.9.9"),
            // No header: the proxy itself.
            ("10.0.0.5", &[], "10.0.0.5"),
            // A hop that is not an address stops the walk where it was.
            ("10.0.0.5", &["203.0.113.9, unknown"], "10.0.0.5"),
            ("10.0.0.5", &["garbage, 203.0.113.9"], "203.0.113.9"),
            // Ports, IPv6 and IPv4 mapped into IPv6.
            ("10.0.0.5", &["203.0.113.9:51234"], "203.0.113.9"),
            ("fd00::1", &["[2001:db8::7]:443"], "2001:db8::7"),
            ("::ffff:10.0.0.5", &["::ffff:203.0.113.9"], "203.0.113.9"),
        ];
        for (peer, header, client) in cases {
            assert_eq!(
                client_address(ip(peer), &trusted, header),
                ip(client),
                "peer {peer}, X-Forwarded-For {header:?}"
            );
        }
        assert_eq!(client_address(None, &trusted, &["203.0.113.9"]), None);
    }

    #[test]
    fn with_no_trusted_proxy_the_peer_is_the_client() {
        assert_eq!(
            client_address(ip("127.0.0.1"), &[], &["203.0.113.9"]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn reads_networks_and_single_addresses() {
        assert_eq!(
            parse_network("10.0.0.0/8").unwrap(),
            "10.0.0.0/8".parse().unwrap()
        );
        assert_eq!(
            parse_network(" 192.0.2.1 ").unwrap(),
            "192.0.2.1/32".parse().unwrap()
        );
        assert_eq!(parse_network("::1").unwrap(), "::1/128".parse().unwrap());
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("balancer.internal").is_err());
    }

    #[test]
    fn trusted_proxies_are_read_as_a_comma_separated_list() {
        let config =
            Config::from_args(["rollcall", "--trusted-proxies", "10.0.0.0/8,192.0.2.1"]).unwrap();
        assert_eq!(
            config.trusted_proxies,
            [
                "10.0.0.0/8".parse::<ipnet::IpNet>().unwrap(),
                "192.0.2.1/32".parse().unwrap()
            ]
        );
        let refused = Config::from_args(["rollcall", "--trusted-proxies", "balancer.internal"])
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("neither an IP address nor a network"),
            "{refused}"
        );
        assert!(
            Config::from_args(["rollcall"])
                .unwrap()
                .trusted_proxies
                .is_empty()
        );
    }
}
