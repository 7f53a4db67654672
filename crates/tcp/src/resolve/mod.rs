//! Name resolution: from `"host:port"` to the socket addresses to dial or
//! bind.
//!
//! The pipeline is: parse the address ([`split_host_port`](crate::split_host_port)),
//! turn the port or service name into a number, turn the host into IPs (IP
//! literals directly, names through a [`Resolver`]), then filter and order
//! them by network and [`ResolverPolicy`].
//!
//! Resolvers compose: [`default_resolver`] is a [`SingleflightResolver`] over
//! the [`SystemResolver`]; wrap it in a [`CachingResolver`], or pin names
//! with a [`StaticResolver`].
//!
//! ```
//! use std::sync::Arc;
//! use tcp::resolve::{self, Resolver, ResolverPolicy, StaticResolver};
//!
//! let pinned = StaticResolver::new()
//!     .host("db.internal", ["127.0.0.1".parse()?])
//!     .port("postgres", 5432);
//! let addrs = resolve::resolve_tcp_addrs("tcp", "db.internal:postgres", &pinned, ResolverPolicy::default(), None)?;
//! assert_eq!(addrs, vec!["127.0.0.1:5432".parse()?]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bounded;
mod caching;
pub(crate) mod pool;
mod services;
mod singleflight;
mod static_hosts;
mod system;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

pub use crate::error::{AddressError, LookupError};
pub(crate) use bounded::Bounded;
pub use caching::CachingResolver;
pub use singleflight::SingleflightResolver;
pub use static_hosts::StaticResolver;
pub use system::SystemResolver;

use crate::addr::{self, Network};
use crate::error::{Error, OpError};

/// Turns host names into IP addresses and service names into ports.
///
/// Implement it to plug in another source of names (DNS over HTTPS, a
/// service registry, a test fixture). IP literals and numeric ports never
/// reach a resolver.
pub trait Resolver: Send + Sync {
    /// The addresses of `host`, in preference order. Give up (with
    /// [`LookupError::timeout`]) once `deadline` has passed.
    fn lookup_ip(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<IpAddr>, LookupError>;

    /// The TCP port of a service name: `"http"` is 80.
    fn lookup_port(&self, service: &str) -> Result<u16, LookupError>;

    /// [`lookup_ip`](Resolver::lookup_ip)'s answer with the IPv6 scope id
    /// (zone) of each address where the source knows it, as socket
    /// addresses with port 0. Dialing a link-local address needs its
    /// scope: the [`SystemResolver`] keeps the one `getaddrinfo` gives,
    /// and the resolvers that wrap others pass it on. The default gives
    /// `lookup_ip`'s addresses with no scope.
    fn lookup_addrs(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<SocketAddr>, LookupError> {
        Ok(self.lookup_ip(host, deadline)?.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect())
    }
}

impl<R: Resolver + ?Sized> Resolver for Arc<R> {
    fn lookup_ip(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<IpAddr>, LookupError> {
        (**self).lookup_ip(host, deadline)
    }

    fn lookup_port(&self, service: &str) -> Result<u16, LookupError> {
        (**self).lookup_port(service)
    }
    fn lookup_addrs(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<SocketAddr>, LookupError> {
        (**self).lookup_addrs(host, deadline)
    }
}

impl<R: Resolver + ?Sized> Resolver for Box<R> {
    fn lookup_ip(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<IpAddr>, LookupError> {
        (**self).lookup_ip(host, deadline)
    }

    fn lookup_port(&self, service: &str) -> Result<u16, LookupError> {
        (**self).lookup_port(service)
    }
    fn lookup_addrs(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<SocketAddr>, LookupError> {
        (**self).lookup_addrs(host, deadline)
    }
}

/// Which address families to use, and in which order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolverPolicy {
    /// Put IPv6 addresses first (for network `tcp`); otherwise the
    /// resolver's order is kept.
    pub prefer_ipv6: bool,
    /// Use IPv4 addresses.
    pub allow_ipv4: bool,
    /// Use IPv6 addresses.
    pub allow_ipv6: bool,
}

impl Default for ResolverPolicy {
    fn default() -> Self {
        ResolverPolicy { prefer_ipv6: false, allow_ipv4: true, allow_ipv6: true }
    }
}

impl ResolverPolicy {
    fn allows(&self, ip: &IpAddr) -> bool {
        if ip.is_ipv4() { self.allow_ipv4 } else { self.allow_ipv6 }
    }
}

/// The process-wide resolver: a [`SingleflightResolver`] over the
/// [`SystemResolver`], shared by every dial that names no other.
pub fn default_resolver() -> Arc<dyn Resolver> {
    static DEFAULT: OnceLock<Arc<dyn Resolver>> = OnceLock::new();
    DEFAULT.get_or_init(|| Arc::new(SingleflightResolver::new(SystemResolver::new()))).clone()
}

/// Every socket address `address` stands for on `network`, in the order to
/// try them. An empty host means the wildcard addresses.
pub fn resolve_tcp_addrs(
    network: &str,
    address: &str,
    resolver: &dyn Resolver,
    policy: ResolverPolicy,
    deadline: Option<Instant>,
) -> Result<Vec<SocketAddr>, OpError> {
    let wrap = |err| OpError::new("resolve", network, None, err);
    let net: Network = network.parse().map_err(wrap)?;
    resolve(Purpose::Resolve, net, address, resolver, policy, deadline).map_err(wrap)
}

/// The first address [`resolve_tcp_addrs`] finds, with the default resolver
/// and policy.
pub fn resolve_tcp_addr(network: &str, address: &str) -> Result<SocketAddr, OpError> {
    let addrs = resolve_tcp_addrs(network, address, &*default_resolver(), ResolverPolicy::default(), None)?;
    Ok(addrs[0])
}

/// What the addresses are for, which decides what an empty host means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// The local system: loopback.
    Dial,
    /// Every interface: the wildcard addresses, IPv6 (dual-stack) first.
    Listen,
    /// The wildcard addresses, IPv4 first.
    Resolve,
}

/// The resolution pipeline: parse, port, host, filter, order. Never empty
/// on success.
pub(crate) fn resolve(
    purpose: Purpose,
    net: Network,
    address: &str,
    resolver: &dyn Resolver,
    policy: ResolverPolicy,
    deadline: Option<Instant>,
) -> Result<Vec<SocketAddr>, Error> {
    if address.is_empty() && purpose == Purpose::Dial {
        return Err(Error::Address(AddressError::new("missing address", "")));
    }
    let (host, service) = addr::split_host_port(address).map_err(Error::Address)?;
    let port = match addr::parse_port(service, address).map_err(Error::Address)? {
        Some(p) => p,
        None => resolver.lookup_port(service).map_err(Error::Lookup)?,
    };

    let mut ips: Vec<(IpAddr, u32)> = if host.is_empty() {
        let v4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let v6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        match purpose {
            Purpose::Dial => vec![(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), (IpAddr::V6(Ipv6Addr::LOCALHOST), 0)],
            Purpose::Listen => vec![(v6, 0), (v4, 0)],
            Purpose::Resolve => vec![(v4, 0), (v6, 0)],
        }
    } else if let Some(literal) = addr::parse_literal(host, address).map_err(Error::Address)? {
        if purpose == Purpose::Dial && literal.0 == IpAddr::V6(Ipv6Addr::UNSPECIFIED) {
            // Like Go (issue 18806): "[::]" also means 0.0.0.0 when dialing,
            // so a tcp4 dial to a listener's "[::]:port" reaches it.
            vec![literal, (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)]
        } else {
            vec![literal]
        }
    } else {
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(Error::Timeout);
        }
        let found = resolver.lookup_addrs(host, deadline).map_err(Error::Lookup)?;
        if found.is_empty() {
            return Err(Error::Lookup(LookupError::not_found(host)));
        }
        found.into_iter().map(|a| (a.ip(), scope_id(&a))).collect()
    };

    // An IPv4-mapped IPv6 address is an IPv4 address, as in Go: tcp6 does
    // not reach 127.0.0.1 through "[::ffff:127.0.0.1]".
    for (ip, scope) in &mut ips {
        if let IpAddr::V6(v6) = *ip
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            (*ip, *scope) = (IpAddr::V4(v4), 0);
        }
    }
    // Duplicates removed, first occurrence kept.
    let mut seen = Vec::with_capacity(ips.len());
    ips.retain(|entry| {
        let new = !seen.contains(entry);
        if new {
            seen.push(*entry);
        }
        new
    });
    ips.retain(|(ip, _)| net.allows(ip) && policy.allows(ip));
    if ips.is_empty() {
        let name = if host.is_empty() { address } else { host };
        return Err(Error::Lookup(LookupError::other(name, "no suitable address found")));
    }
    if policy.prefer_ipv6 && net == Network::Tcp {
        ips.sort_by_key(|(ip, _)| ip.is_ipv4()); // stable: v6 first, order kept
    }
    Ok(ips.into_iter().map(|(ip, scope)| addr::socket_addr(ip, port, scope)).collect())
}

/// The IPv6 scope id of `addr` (0 for IPv4).
fn scope_id(addr: &SocketAddr) -> u32 {
    match addr {
        SocketAddr::V4(_) => 0,
        SocketAddr::V6(v6) => v6.scope_id(),
    }
}

/// Addresses without their scopes and ports.
pub(crate) fn ips(addrs: &[SocketAddr]) -> Vec<IpAddr> {
    addrs.iter().map(SocketAddr::ip).collect()
}

/// Resolver keys: case-insensitive, trailing dot ignored.
pub(crate) fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}
