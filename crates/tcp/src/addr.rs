//! Address strings and networks, by Go's rules (`SplitHostPort`,
//! `JoinHostPort`, `parsePort`, zones).

use std::fmt;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::str::FromStr;

use crate::error::{AddressError, Error};
use crate::sys;

/// Which IP families a dial or listen may use.
///
/// ```
/// use tcp::Network;
/// assert_eq!("tcp6".parse::<Network>().unwrap(), Network::Tcp6);
/// assert!(matches!("udp".parse::<Network>(), Err(tcp::Error::UnknownNetwork(_))));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Network {
    /// IPv4 and IPv6 (`"tcp"`).
    #[default]
    Tcp,
    /// IPv4 only (`"tcp4"`).
    Tcp4,
    /// IPv6 only (`"tcp6"`).
    Tcp6,
}

impl Network {
    /// The network's name: `"tcp"`, `"tcp4"` or `"tcp6"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Tcp => "tcp",
            Network::Tcp4 => "tcp4",
            Network::Tcp6 => "tcp6",
        }
    }

    /// Whether addresses of `ip`'s family belong to this network.
    pub fn allows(self, ip: &IpAddr) -> bool {
        match self {
            Network::Tcp => true,
            Network::Tcp4 => ip.is_ipv4(),
            Network::Tcp6 => ip.is_ipv6(),
        }
    }
}

impl FromStr for Network {
    type Err = Error;

    fn from_str(s: &str) -> Result<Network, Error> {
        match s {
            "tcp" => Ok(Network::Tcp),
            "tcp4" => Ok(Network::Tcp4),
            "tcp6" => Ok(Network::Tcp6),
            other => Err(Error::UnknownNetwork(other.to_string())),
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Split `"host:port"`, `"[v6]:port"` or `"[v6%zone]:port"` into host and
/// port, as Go's `net.SplitHostPort` does. The host loses its brackets and
/// keeps its zone; either part may be empty.
///
/// ```
/// assert_eq!(tcp::split_host_port("[::1]:80").unwrap(), ("::1", "80"));
/// assert_eq!(tcp::split_host_port(":http").unwrap(), ("", "http"));
/// assert!(tcp::split_host_port("::1:80").is_err()); // too many colons
/// ```
pub fn split_host_port(hostport: &str) -> Result<(&str, &str), AddressError> {
    let err = |msg: &str| AddressError::new(msg, hostport);
    let Some(i) = hostport.rfind(':') else {
        return Err(err("missing port in address"));
    };
    let (host, j, k);
    if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return Err(err("missing ']' in address"));
        };
        if end + 1 == hostport.len() {
            return Err(err("missing port in address"));
        }
        if end + 1 != i {
            return Err(if hostport.as_bytes()[end + 1] == b':' {
                err("too many colons in address")
            } else {
                err("missing port in address")
            });
        }
        host = &hostport[1..end];
        (j, k) = (1, end + 1);
    } else {
        host = &hostport[..i];
        if host.contains(':') {
            return Err(err("too many colons in address"));
        }
        (j, k) = (0, 0);
    }
    if hostport[j..].contains('[') {
        return Err(err("unexpected '[' in address"));
    }
    if hostport[k..].contains(']') {
        return Err(err("unexpected ']' in address"));
    }
    Ok((host, &hostport[i + 1..]))
}

/// Join a host and port into an address string, bracketing IPv6 hosts.
///
/// ```
/// assert_eq!(tcp::join_host_port("::1", 443), "[::1]:443");
/// assert_eq!(tcp::join_host_port("example.com", 80), "example.com:80");
/// ```
pub fn join_host_port(host: &str, port: impl fmt::Display) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// A port string: a number (`Ok(Some)`), empty (port 0), or a service name
/// to look up (`Ok(None)`).
pub(crate) fn parse_port(service: &str, addr: &str) -> Result<Option<u16>, AddressError> {
    if service.is_empty() {
        return Ok(Some(0));
    }
    let digits = service.strip_prefix('+').unwrap_or(service);
    let (negative, digits) = match digits.strip_prefix('-') {
        Some(d) if !service.starts_with('+') => (true, d),
        _ => (false, digits),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return if service.bytes().any(|b| !b.is_ascii_digit() && b != b'+' && b != b'-') {
            Ok(None)
        } else {
            Err(AddressError::new("invalid port", addr))
        };
    }
    match digits.parse::<u32>() {
        Ok(0) => Ok(Some(0)),
        Ok(p) if !negative && p <= 65535 => Ok(Some(p as u16)),
        _ => Err(AddressError::new("invalid port", addr)),
    }
}

/// An IP literal, possibly with a `%zone` (IPv6 only): `Ok(None)` if `host`
/// is not a literal and needs a resolver.
pub(crate) fn parse_literal(host: &str, addr: &str) -> Result<Option<(IpAddr, u32)>, AddressError> {
    let (ip, zone) = match host.rfind('%') {
        Some(i) if i > 0 => (&host[..i], Some(&host[i + 1..])),
        _ => (host, None),
    };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return Ok(None);
    };
    let Some(zone) = zone else {
        return Ok(Some((ip, 0)));
    };
    if ip.is_ipv4() {
        return Err(AddressError::new("zone on IPv4 address", addr));
    }
    if zone.is_empty() {
        return Err(AddressError::new("invalid scoped address zone", addr));
    }
    let scope = if zone.bytes().all(|b| b.is_ascii_digit()) {
        zone.parse::<u32>().map_err(|_| AddressError::new("invalid scope id", addr))?
    } else {
        sys::interface_index(zone).ok_or_else(|| AddressError::new("unknown interface zone", addr))?
    };
    Ok(Some((ip, scope)))
}

/// An IP and port as a socket address, with an IPv6 scope.
pub(crate) fn socket_addr(ip: IpAddr, port: u16, scope: u32) -> SocketAddr {
    match ip {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V4(v4), port),
        IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_like_go() {
        let ok = [
            ("localhost:80", ("localhost", "80")),
            ("127.0.0.1:0", ("127.0.0.1", "0")),
            ("[::1]:443", ("::1", "443")),
            ("[fe80::1%eth0]:80", ("fe80::1%eth0", "80")),
            (":80", ("", "80")),
            ("golang.org:", ("golang.org", "")),
            ("[::1]:", ("::1", "")),
            (":", ("", "")),
            ("host%zone:80", ("host%zone", "80")),
        ];
        for (input, want) in ok {
            assert_eq!(split_host_port(input).unwrap(), want, "{input}");
        }
        let bad = [
            ("localhost", "missing port in address"),
            ("", "missing port in address"),
            ("[::1]", "missing port in address"),
            ("[::1]x:80", "missing port in address"),
            ("::1:80", "too many colons in address"),
            ("[::1]:80:90", "too many colons in address"),
            ("[::1:80", "missing ']' in address"),
            ("a[b:80", "unexpected '[' in address"),
            ("a]b:80", "unexpected ']' in address"),
            ("[a]]:80", "missing port in address"),
            ("[[a]:80", "unexpected '[' in address"),
        ];
        for (input, msg) in bad {
            let e = split_host_port(input).unwrap_err();
            assert_eq!(e.message, msg, "{input}");
            assert_eq!(e.addr, input);
        }
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("80", "x").unwrap(), Some(80));
        assert_eq!(parse_port("", "x").unwrap(), Some(0));
        assert_eq!(parse_port("+443", "x").unwrap(), Some(443));
        assert_eq!(parse_port("65535", "x").unwrap(), Some(65535));
        assert_eq!(parse_port("http", "x").unwrap(), None);
        assert_eq!(parse_port("65536", "x").unwrap_err().message, "invalid port");
        assert_eq!(parse_port("-1", "x").unwrap_err().message, "invalid port");
        assert_eq!(parse_port("99999999999999999999", "x").unwrap_err().message, "invalid port");
        assert_eq!(parse_port("+", "x").unwrap_err().message, "invalid port");
    }

    #[test]
    fn literals_and_zones() {
        assert_eq!(parse_literal("127.0.0.1", "a").unwrap(), Some(("127.0.0.1".parse().unwrap(), 0)));
        assert_eq!(parse_literal("fe80::1%7", "a").unwrap(), Some(("fe80::1".parse().unwrap(), 7)));
        assert_eq!(parse_literal("::1%lo", "a").unwrap().unwrap().1, sys::interface_index("lo").unwrap());
        assert_eq!(parse_literal("example.com", "a").unwrap(), None);
        assert_eq!(parse_literal("127.0.0.1%lo", "a").unwrap_err().message, "zone on IPv4 address");
        assert_eq!(parse_literal("fe80::1%", "a").unwrap_err().message, "invalid scoped address zone");
        assert_eq!(parse_literal("fe80::1%nosuchif0", "a").unwrap_err().message, "unknown interface zone");
        assert_eq!(parse_literal("fe80::1%99999999999", "a").unwrap_err().message, "invalid scope id");
    }
}
