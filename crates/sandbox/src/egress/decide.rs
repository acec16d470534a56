//! The egress proxy's decision, as pure functions: a host name must be on the allow-list
//! (never an IP literal), and every address it resolves to must be a public one, so a
//! sandbox can reach neither the host's loopback services nor a private network nor a
//! cloud metadata endpoint, whatever a DNS answer says.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The setting an operator changes to allow a host (named in every refusal).
pub const ALLOW_SETTING: &str = "[sandbox.egress] allow (DRAFTSMITH_SANDBOX_EGRESS_ALLOW)";

/// Host names a sandbox may reach: exact names, or `*.example.com` / `.example.com` for
/// every subdomain of `example.com`. Compared case-insensitively, without a trailing dot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    exact: Vec<String>,
    suffixes: Vec<String>,
}

impl AllowList {
    /// The list from its configured entries (blank entries are ignored).
    pub fn new<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Self::default();
        for entry in entries {
            let entry = normalise(entry.as_ref());
            if let Some(suffix) = entry.strip_prefix("*.").or_else(|| entry.strip_prefix('.')) {
                if !suffix.is_empty() {
                    list.suffixes.push(format!(".{suffix}"));
                }
            } else if !entry.is_empty() {
                list.exact.push(entry);
            }
        }
        list
    }

    /// Whether `host` (already normalised) is on the list.
    fn allows(&self, host: &str) -> bool {
        self.exact.iter().any(|e| e == host) || self.suffixes.iter().any(|s| host.ends_with(s))
    }

    /// The entries, as configured spellings (for capabilities and the start-up log).
    pub fn entries(&self) -> Vec<String> {
        let wild = self.suffixes.iter().map(|s| format!("*{s}"));
        self.exact.iter().cloned().chain(wild).collect()
    }
}

fn normalise(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Why a request was refused; its `Display` is the 403 body's first line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The target is an IP address, not a host name.
    #[error("{host} is an IP address; the sandbox may only reach host names on {ALLOW_SETTING}")]
    IpLiteral {
        /// The literal asked for.
        host: String,
    },
    /// The host name is not on the allow-list.
    #[error(
        "{host} is not on the sandbox's egress allow-list; add it to {ALLOW_SETTING} to allow it"
    )]
    NotAllowed {
        /// The host asked for.
        host: String,
    },
    /// An allowed name resolved to an address a sandbox must never reach.
    #[error(
        "{host} resolves to {addr}, a {class} address, which a sandbox may never reach ({ALLOW_SETTING} cannot change this)"
    )]
    Address {
        /// The host asked for.
        host: String,
        /// The address it resolved to.
        addr: IpAddr,
        /// Its class.
        class: AddressClass,
    },
    /// The request was not understood.
    #[error("malformed proxy request: {0}")]
    Malformed(String),
}

/// Classes of addresses no sandbox may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressClass {
    /// `127.0.0.0/8`, `::1`.
    #[error("loopback")]
    Loopback,
    /// `169.254.0.0/16`, `fe80::/10`.
    #[error("link-local")]
    LinkLocal,
    /// A cloud metadata endpoint (`169.254.169.254`, `fd00:ec2::254`, `100.100.100.200`).
    #[error("metadata")]
    Metadata,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`) or a unique-local IPv6 (`fc00::/7`).
    #[error("private")]
    Private,
    /// Carrier-grade NAT, `100.64.0.0/10`.
    #[error("shared (CGNAT)")]
    SharedCgnat,
    /// `0.0.0.0/8`, `::`.
    #[error("unspecified")]
    Unspecified,
    /// Broadcast, multicast, reserved or benchmarking ranges.
    #[error("reserved")]
    Reserved,
}

/// The host name of a proxy target, checked against `allow`: IP literals (also bracketed
/// IPv6) are refused whatever the list says.
pub fn check_host(host: &str, allow: &AllowList) -> Result<String, Refusal> {
    let name = normalise(host);
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok() || looks_numeric(bare) {
        return Err(Refusal::IpLiteral { host: host.into() });
    }
    if name.is_empty() || !allow.allows(&name) {
        return Err(Refusal::NotAllowed { host: host.into() });
    }
    Ok(name)
}

/// Digits, dots and hex forms (`2130706433`, `0x7f.1`) that resolvers read as IPv4.
fn looks_numeric(host: &str) -> bool {
    !host.is_empty()
        && host.split('.').all(|part| {
            let hex = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X"));
            match hex {
                Some(h) => h.chars().all(|c| c.is_ascii_hexdigit()),
                None => !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()),
            }
        })
}

/// The class of `addr` when a sandbox must not reach it; `None` for a public address.
pub fn forbidden_class(addr: IpAddr) -> Option<AddressClass> {
    match addr {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_class(v4),
            None => v6_class(v6),
        },
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b) {
        _ if [a, b, c, d] == [169, 254, 169, 254] || [a, b, c, d] == [100, 100, 100, 200] => {
            AddressClass::Metadata
        }
        (0, _) => AddressClass::Unspecified,
        (127, _) => AddressClass::Loopback,
        (169, 254) => AddressClass::LinkLocal,
        (10, _) | (192, 168) => AddressClass::Private,
        (172, 16..=31) => AddressClass::Private,
        (100, 64..=127) => AddressClass::SharedCgnat,
        (192, 0) if c == 0 => AddressClass::Reserved,
        (198, 18..=19) => AddressClass::Reserved,
        (224..=255, _) => AddressClass::Reserved,
        _ => return None,
    })
}

fn v6_class(ip: Ipv6Addr) -> Option<AddressClass> {
    let first = ip.segments()[0];
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some(AddressClass::Metadata);
    }
    Some(if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if first & 0xffc0 == 0xfe80 {
        AddressClass::LinkLocal
    } else if first & 0xfe00 == 0xfc00 {
        AddressClass::Private
    } else if first & 0xff00 == 0xff00 {
        AddressClass::Reserved
    } else if let Some(v4) = ip.to_ipv4() {
        // IPv4-compatible (`::a.b.c.d`) and NAT64 forms reach IPv4 hosts: judge those.
        return v4_class(v4).or(nat64(ip));
    } else {
        return nat64(ip);
    })
}

/// `64:ff9b::/96` embeds an IPv4 address a NAT64 gateway would reach.
fn nat64(ip: Ipv6Addr) -> Option<AddressClass> {
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return v4_class(Ipv4Addr::new(a, b, c, d));
    }
    None
}

/// The first address of `resolved` a sandbox may reach, or the refusal naming the first
/// one it may not: every address is checked, and one bad answer refuses the whole name (a
/// DNS answer mixing public and private addresses is a rebinding attempt).
pub fn pick_address(host: &str, resolved: &[IpAddr]) -> Result<IpAddr, Refusal> {
    for addr in resolved {
        if let Some(class) = forbidden_class(*addr) {
            return Err(Refusal::Address {
                host: host.into(),
                addr: *addr,
                class,
            });
        }
    }
    resolved
        .first()
        .copied()
        .ok_or_else(|| Refusal::Malformed(format!("{host} did not resolve")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn allows_only_listed_names() {
        let allow = AllowList::new(["registry.npmjs.org", "*.example.com", " Git.Example.ORG. "]);
        assert_eq!(
            check_host("registry.npmjs.org", &allow).as_deref(),
            Ok("registry.npmjs.org")
        );
        assert_eq!(
            check_host("REGISTRY.npmjs.org.", &allow).as_deref(),
            Ok("registry.npmjs.org")
        );
        assert!(check_host("cdn.example.com", &allow).is_ok());
        assert!(check_host("git.example.org", &allow).is_ok());
        for refused in [
            "example.com",
            "evil-example.com",
            "npmjs.org",
            "registry.npmjs.org.evil.net",
            "",
        ] {
            assert!(
                matches!(check_host(refused, &allow), Err(Refusal::NotAllowed { .. })),
                "{refused}"
            );
        }
        assert_eq!(
            allow.entries(),
            ["registry.npmjs.org", "git.example.org", "*.example.com"]
        );
    }

    #[test]
    fn refuses_ip_literals_even_when_listed() {
        let allow = AllowList::new(["127.0.0.1", "::1", "10.0.0.1", "2130706433"]);
        for literal in [
            "127.0.0.1",
            "[::1]",
            "::1",
            "10.0.0.1",
            "2130706433",
            "0x7f.1",
            "93.184.216.34",
        ] {
            let refusal = check_host(literal, &allow);
            assert!(
                matches!(refusal, Err(Refusal::IpLiteral { .. })),
                "{literal}: {refusal:?}"
            );
        }
    }

    #[test]
    fn classifies_every_forbidden_range() {
        let cases = [
            ("127.0.0.1", AddressClass::Loopback),
            ("127.255.0.9", AddressClass::Loopback),
            ("::1", AddressClass::Loopback),
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("169.254.169.254", AddressClass::Metadata),
            ("fd00:ec2::254", AddressClass::Metadata),
            ("100.100.100.200", AddressClass::Metadata),
            ("169.254.10.1", AddressClass::LinkLocal),
            ("fe80::1", AddressClass::LinkLocal),
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.31.255.255", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("::ffff:192.168.1.1", AddressClass::Private),
            ("fc00::1", AddressClass::Private),
            ("fdab::1", AddressClass::Private),
            ("100.64.0.1", AddressClass::SharedCgnat),
            ("100.127.255.1", AddressClass::SharedCgnat),
            ("0.0.0.0", AddressClass::Unspecified),
            ("::", AddressClass::Unspecified),
            ("64:ff9b::a00:1", AddressClass::Private),
            ("224.0.0.1", AddressClass::Reserved),
            ("255.255.255.255", AddressClass::Reserved),
            ("ff02::1", AddressClass::Reserved),
        ];
        for (addr, class) in cases {
            assert_eq!(forbidden_class(ip(addr)), Some(class), "{addr}");
        }
        for public in [
            "104.16.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "8.8.8.8",
            "2606:4700::1",
        ] {
            assert_eq!(forbidden_class(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn one_forbidden_answer_refuses_the_name() {
        let public = ip("104.16.1.1");
        assert_eq!(pick_address("a.example", &[public]), Ok(public));
        let mixed = [public, ip("10.0.0.5")];
        let refusal = pick_address("a.example", &mixed);
        assert!(
            matches!(
                refusal,
                Err(Refusal::Address {
                    class: AddressClass::Private,
                    ..
                })
            ),
            "{refusal:?}"
        );
        assert!(pick_address("a.example", &[]).is_err());
        let text = Refusal::NotAllowed {
            host: "evil.example".into(),
        }
        .to_string();
        assert!(
            text.contains("evil.example") && text.contains("[sandbox.egress] allow"),
            "{text}"
        );
    }
}
