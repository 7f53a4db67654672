//! Loopback addresses, short to write, and whether IPv6 loopback exists.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener};
use std::time::Duration;

pub const LO4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const LO6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// `127.0.0.1:0`: any free port on IPv4 loopback.
pub fn loopback() -> SocketAddr {
    SocketAddr::new(LO4, 0)
}

pub const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn v4(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

pub fn v6(ip: Ipv6Addr, port: u16) -> SocketAddr {
    SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0))
}

/// Whether `[::1]` can be bound here. Tests that need it print that they
/// skipped when it cannot, unless `RESEAU_REQUIRE_IPV6` is set (CI sets
/// it): then a missing IPv6 loopback fails them instead of passing them
/// without testing anything.
pub fn ipv6_loopback(test: &str) -> bool {
    let ok = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok();
    if !ok {
        assert!(
            std::env::var_os("RESEAU_REQUIRE_IPV6").is_none(),
            "{test}: no IPv6 loopback here, and RESEAU_REQUIRE_IPV6 is set"
        );
        eprintln!("{test}: skipped, no IPv6 loopback on this machine");
    }
    ok
}

/// Call `f` until it returns `Some` (it returns `None` when a port it wanted
/// was taken), at most 50 times.
pub fn retry<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..50 {
        if let Some(t) = f() {
            return t;
        }
    }
    panic!("{what}: no free port after 50 tries");
}
