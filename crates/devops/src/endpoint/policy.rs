//! Which addresses `check_endpoint` may connect to.
//!
//! A server reachable by remote clients must not become their window into the host's own
//! networks (loopback services, the cloud metadata endpoint at 169.254.169.254, the private
//! LAN). Under [`AddressPolicy::PublicOnly`] every address a host name resolves to is
//! checked against the ranges below, and the connection goes to an address that was
//! checked, never to a second lookup (no DNS-rebinding gap). Redirect hops go through the
//! same check.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use mcp_server_runtime::Transport;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which destination addresses a check may connect to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum AddressPolicy {
    /// Any address, loopback and private networks included (the default over stdio, where
    /// the client runs on this machine as the same user anyway).
    Any,
    /// Only globally routable unicast addresses (the default over HTTP, where clients may be
    /// remote): loopback, private, link-local, carrier-grade NAT, multicast, documentation
    /// and reserved ranges are refused.
    PublicOnly,
}

impl AddressPolicy {
    /// The policy when the operator chose none: `Any` for stdio, whose client runs on this
    /// machine as the same user; `PublicOnly` for HTTP, whose clients may be remote.
    pub fn default_for(transport: Transport) -> Self {
        match transport {
            Transport::Stdio => Self::Any,
            Transport::Http => Self::PublicOnly,
        }
    }

    /// Why `address` is refused under this policy, or `None` when it may be used.
    pub fn refusal(self, address: IpAddr) -> Option<&'static str> {
        match self {
            Self::Any => None,
            Self::PublicOnly => non_public_range(address),
        }
    }

    /// The spelling used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::PublicOnly => "public_only",
        }
    }
}

impl fmt::Display for AddressPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An IPv4 range and what it is.
struct Range4(Ipv4Addr, u8, &'static str);
/// An IPv6 range and what it is.
struct Range6(Ipv6Addr, u8, &'static str);

/// IPv4 ranges that are not globally routable unicast (IANA special-purpose registry).
const NON_PUBLIC_V4: &[Range4] = &[
    Range4(Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\" (0.0.0.0/8)"),
    Range4(Ipv4Addr::new(10, 0, 0, 0), 8, "private (10.0.0.0/8)"),
    Range4(
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        "carrier-grade NAT (100.64.0.0/10)",
    ),
    Range4(Ipv4Addr::new(127, 0, 0, 0), 8, "loopback (127.0.0.0/8)"),
    Range4(
        Ipv4Addr::new(169, 254, 0, 0),
        16,
        "link-local, cloud metadata (169.254.0.0/16)",
    ),
    Range4(Ipv4Addr::new(172, 16, 0, 0), 12, "private (172.16.0.0/12)"),
    Range4(
        Ipv4Addr::new(192, 0, 0, 0),
        24,
        "IETF protocol assignments (192.0.0.0/24)",
    ),
    Range4(
        Ipv4Addr::new(192, 0, 2, 0),
        24,
        "documentation (192.0.2.0/24)",
    ),
    Range4(
        Ipv4Addr::new(192, 88, 99, 0),
        24,
        "6to4 relay anycast (192.88.99.0/24)",
    ),
    Range4(
        Ipv4Addr::new(192, 168, 0, 0),
        16,
        "private (192.168.0.0/16)",
    ),
    Range4(
        Ipv4Addr::new(198, 18, 0, 0),
        15,
        "benchmarking (198.18.0.0/15)",
    ),
    Range4(
        Ipv4Addr::new(198, 51, 100, 0),
        24,
        "documentation (198.51.100.0/24)",
    ),
    Range4(
        Ipv4Addr::new(203, 0, 113, 0),
        24,
        "documentation (203.0.113.0/24)",
    ),
    Range4(Ipv4Addr::new(224, 0, 0, 0), 4, "multicast (224.0.0.0/4)"),
    Range4(
        Ipv4Addr::new(240, 0, 0, 0),
        4,
        "reserved or broadcast (240.0.0.0/4)",
    ),
];

/// IPv6 ranges that are not globally routable unicast. Ranges that embed an IPv4 address
/// (mapped, NAT64, 6to4) are handled before this table by checking the embedded address.
const NON_PUBLIC_V6: &[Range6] = &[
    Range6(Ipv6Addr::UNSPECIFIED, 128, "unspecified (::)"),
    Range6(Ipv6Addr::LOCALHOST, 128, "loopback (::1)"),
    Range6(
        Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0),
        96,
        "IPv4-compatible (::/96, deprecated)",
    ),
    Range6(
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        "local-use NAT64 (64:ff9b:1::/48)",
    ),
    Range6(
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        "discard-only (100::/64)",
    ),
    Range6(
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        23,
        "IETF protocol assignments, Teredo (2001::/23)",
    ),
    Range6(
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        "documentation (2001:db8::/32)",
    ),
    Range6(
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        "documentation (3fff::/20)",
    ),
    Range6(
        Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0),
        16,
        "segment routing (5f00::/16)",
    ),
    Range6(
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        "unique local (fc00::/7)",
    ),
    Range6(
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
        "link-local (fe80::/10)",
    ),
    Range6(
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        "site-local (fec0::/10, deprecated)",
    ),
    Range6(
        Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
        8,
        "multicast (ff00::/8)",
    ),
];

/// What non-public range `address` is in, or `None` for a globally routable unicast address.
pub fn non_public_range(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(address: Ipv4Addr) -> Option<&'static str> {
    let bits = address.to_bits();
    NON_PUBLIC_V4
        .iter()
        .find(|Range4(network, prefix, _)| same_prefix(bits, network.to_bits(), *prefix, 32))
        .map(|range| range.2)
}

fn non_public_v6(address: Ipv6Addr) -> Option<&'static str> {
    // An IPv6 address that carries an IPv4 one reaches that IPv4 host: judge the IPv4 one.
    if let Some(embedded) = embedded_v4(address) {
        return non_public_v4(embedded);
    }
    let bits = address.to_bits();
    NON_PUBLIC_V6
        .iter()
        .find(|Range6(network, prefix, _)| same_prefix(bits, network.to_bits(), *prefix, 128))
        .map(|range| range.2)
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), well-known NAT64
/// (`64:ff9b::a.b.c.d`) or 6to4 (`2002:AABB:CCDD::`) address.
fn embedded_v4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = address.segments();
    let low32 = || Ipv4Addr::from_bits((u32::from(s[6]) << 16) | u32::from(s[7]));
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low32()),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low32()),
        [0x2002, high, low, ..] => Some(Ipv4Addr::from_bits(
            (u32::from(high) << 16) | u32::from(low),
        )),
        _ => None,
    }
}

/// Whether the first `prefix` of `width` bits of `a` and `b` agree.
fn same_prefix<T>(a: T, b: T, prefix: u8, width: u32) -> bool
where
    T: Copy + PartialEq + std::ops::Shr<u32, Output = T>,
{
    let shift = width - u32::from(prefix);
    if shift >= width {
        return true; // a /0 network contains everything
    }
    (a >> shift) == (b >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(address: &str) -> Option<&'static str> {
        AddressPolicy::PublicOnly.refusal(address.parse().unwrap())
    }

    #[test]
    fn public_addresses_pass() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(refused(address), None, "{address}");
        }
    }

    #[test]
    fn non_public_addresses_are_refused_with_their_range() {
        let cases = [
            ("127.0.0.1", "loopback"),
            ("127.255.1.2", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "cloud metadata"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("0.0.0.0", "this network"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("192.0.2.10", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fe80::1", "link-local"),
            ("fd00::1", "unique local"),
            ("fc00::1", "unique local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("fec0::1", "site-local"),
            // IPv4 hidden inside IPv6 is judged as IPv4.
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("64:ff9b::a00:1", "private"),
            ("2002:7f00:1::", "loopback"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("2001::1", "Teredo"),
        ];
        for (address, range) in cases {
            let reason = refused(address).unwrap_or_else(|| panic!("{address} passed"));
            assert!(reason.contains(range), "{address}: {reason}");
        }
    }

    #[test]
    fn remote_transports_default_to_public_only() {
        assert_eq!(
            AddressPolicy::default_for(Transport::Stdio),
            AddressPolicy::Any
        );
        assert_eq!(
            AddressPolicy::default_for(Transport::Http),
            AddressPolicy::PublicOnly
        );
    }

    #[test]
    fn any_policy_refuses_nothing() {
        for address in ["127.0.0.1", "::1", "169.254.169.254", "10.0.0.1"] {
            assert_eq!(AddressPolicy::Any.refusal(address.parse().unwrap()), None);
        }
    }

    #[test]
    fn prefix_comparison_handles_edges() {
        assert!(same_prefix(0u32, u32::MAX, 0, 32));
        assert!(same_prefix(5u32, 5u32, 32, 32));
        assert!(!same_prefix(5u32, 4u32, 32, 32));
    }
}
