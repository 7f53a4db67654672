//! The address parser and the resolution pipeline, on arbitrary strings.
//!
//! Input: one control byte, then the address (bytes taken as UTF-8, lossily).
//! Control bits 0–1 pick the network (`tcp`, `tcp4`, `tcp6`, or the unknown
//! `udp`); bit 2 sets `prefer_ipv6`; bits 3 and 4 disallow IPv4 and IPv6;
//! bit 5 passes a deadline that has already passed, bit 6 one an hour away.
//!
//! Names resolve through a `StaticResolver` with a fixed table and no
//! fallback: no DNS, no network. Invariants checked:
//! - nothing panics, and every error displays;
//! - a successful `split_host_port` re-joins consistently: splitting
//!   `join_host_port(host, port)` gives `(host, port)` back, and the join
//!   is the input itself unless the input bracketed a host without a colon;
//! - any host without brackets survives `join_host_port` then `split_host_port`;
//! - a resolution succeeds only for an address that splits, is never empty,
//!   holds no duplicates and no IPv4-mapped IPv6 address, respects the
//!   network (tcp4: IPv4 only, tcp6: IPv6 only) and the policy, puts IPv6
//!   first when preferred, carries the numeric port given, and for names,
//!   plain IP literals and empty hosts is exactly what the table predicts.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tcp::resolve::{ResolverPolicy, StaticResolver, resolve_tcp_addrs};
use tcp::{Error, join_host_port, split_host_port};

/// The resolver's fixed table: name → addresses, in the resolver's order.
fn table() -> &'static [(&'static str, Vec<IpAddr>)] {
    static TABLE: OnceLock<Vec<(&'static str, Vec<IpAddr>)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        vec![
            ("v4.test", vec![ip("192.0.2.1"), ip("192.0.2.2")]),
            ("v6.test", vec![ip("2001:db8::1"), ip("fe80::1")]),
            // Duplicates, and an IPv4-mapped duplicate of an IPv4 entry.
            ("dual.test", vec![ip("2001:db8::1"), ip("192.0.2.1"), ip("::ffff:192.0.2.1"), ip("2001:db8::1")]),
            ("mapped.test", vec![ip("::ffff:10.0.0.1")]),
            ("none.test", vec![]),
            ("localhost", vec![ip("127.0.0.1"), ip("::1")]),
        ]
    })
}

fn resolver() -> &'static StaticResolver {
    static R: OnceLock<StaticResolver> = OnceLock::new();
    R.get_or_init(|| {
        table()
            .iter()
            .fold(StaticResolver::new(), |r, (name, ips)| r.host(*name, ips.iter().copied()))
            .port("svc", 8443)
            .port("zero", 0)
    })
}

/// An IPv4-mapped IPv6 address is the IPv4 address.
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The port a port string certainly means, where that is plain.
fn plain_port(service: &str) -> Option<u16> {
    if service.is_empty() {
        return Some(0);
    }
    if service.len() <= 5 && service.bytes().all(|b| b.is_ascii_digit()) {
        return service.parse().ok();
    }
    match service {
        "svc" => Some(8443),
        "zero" => Some(0),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

fn check_split(address: &str) {
    match split_host_port(address) {
        Ok((host, port)) => {
            assert!(!port.contains(':'), "port {port:?} of {address:?} holds a colon");
            for part in [host, port] {
                assert!(!part.contains(['[', ']']), "{address:?} split into {host:?} and {port:?}");
            }
            let joined = join_host_port(host, port);
            assert_eq!(split_host_port(&joined).ok(), Some((host, port)), "{address:?} re-joined as {joined:?}");
            if host.contains(':') || !address.starts_with('[') {
                assert_eq!(joined, address, "{address:?} re-joined differently");
            }
        }
        Err(e) => {
            assert_eq!(e.addr, address);
            assert!(!e.message.is_empty());
            let _ = e.to_string();
        }
    }
    // Any bracket-free host survives a join and a split.
    if !address.contains('[') && !address.contains(']') {
        let joined = join_host_port(address, 443);
        assert_eq!(split_host_port(&joined).ok(), Some((address, "443")), "host {address:?} joined as {joined:?}");
    }
}

fn check_resolve(ctl: u8, address: &str) {
    let network = ["tcp", "tcp4", "tcp6", "udp"][usize::from(ctl & 3)];
    let policy = ResolverPolicy { prefer_ipv6: ctl & 4 != 0, allow_ipv4: ctl & 8 == 0, allow_ipv6: ctl & 16 == 0 };
    let now = Instant::now();
    let deadline = match (ctl & 32 != 0, ctl & 64 != 0) {
        (true, _) => Some(now),
        (false, true) => Some(now + Duration::from_secs(3600)),
        (false, false) => None,
    };
    let result = resolve_tcp_addrs(network, address, resolver(), policy, deadline);
    let split = split_host_port(address);
    let allowed = |ip: &IpAddr| {
        let net_ok = match network {
            "tcp4" => ip.is_ipv4(),
            "tcp6" => ip.is_ipv6(),
            _ => true,
        };
        net_ok && if ip.is_ipv4() { policy.allow_ipv4 } else { policy.allow_ipv6 }
    };
    let addrs = match result {
        Err(e) => {
            assert_eq!(e.op, "resolve");
            assert_eq!(e.net, network);
            if network == "udp" {
                assert!(matches!(e.err, Error::UnknownNetwork(_)), "{e:?}");
            } else if split.is_err() {
                assert!(matches!(e.err, Error::Address(_)), "{address:?} does not split, yet {e:?}");
            }
            let _ = e.to_string();
            let _ = std::io::Error::from(e).to_string();
            return;
        }
        Ok(addrs) => addrs,
    };
    assert_ne!(network, "udp");
    let (host, service) = split.unwrap_or_else(|e| panic!("{address:?} resolved but does not split: {e}"));
    assert!(!addrs.is_empty(), "{address:?} resolved to nothing");
    let port = addrs[0].port();
    for (i, a) in addrs.iter().enumerate() {
        let ip = a.ip();
        assert!(allowed(&ip), "{address:?} on {network} {policy:?} gave {a}");
        assert_eq!(unmap(ip), ip, "{address:?} gave the IPv4-mapped {a}");
        assert_eq!(a.port(), port, "{address:?}: ports differ: {addrs:?}");
        assert!(!addrs[..i].contains(a), "{address:?}: {a} twice in {addrs:?}");
    }
    if let Some(p) = plain_port(service) {
        assert_eq!(port, p, "{address:?}: port");
    }
    if policy.prefer_ipv6 && network == "tcp" {
        assert!(addrs.is_sorted_by_key(|a| a.is_ipv4()), "{address:?}: IPv6 not first: {addrs:?}");
    }
    // What the addresses must be, where the table says.
    let source: Option<Vec<IpAddr>> = if host.is_empty() {
        Some(vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V6(Ipv6Addr::UNSPECIFIED)])
    } else if let Ok(ip) = host.parse::<IpAddr>() {
        Some(vec![ip])
    } else if host.contains('%') {
        None // a zone: the scope depends on the machine's interfaces
    } else {
        assert!(deadline != Some(now), "{address:?}: a name resolved after its deadline");
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        let (_, ips) = table()
            .iter()
            .find(|(name, _)| *name == key)
            .unwrap_or_else(|| panic!("{address:?}: {host:?} is not in the table, yet resolved to {addrs:?}"));
        Some(ips.clone())
    };
    if let Some(ips) = source {
        let mut want: Vec<IpAddr> = Vec::new();
        for ip in ips.into_iter().map(unmap).filter(allowed) {
            if !want.contains(&ip) {
                want.push(ip);
            }
        }
        if policy.prefer_ipv6 && network == "tcp" {
            want.sort_by_key(IpAddr::is_ipv4);
        }
        let want: Vec<SocketAddr> = want.into_iter().map(|ip| SocketAddr::new(ip, port)).collect();
        assert_eq!(addrs, want, "{address:?} on {network} {policy:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let address = String::from_utf8_lossy(rest);
    check_split(&address);
    check_resolve(ctl, &address);
});
