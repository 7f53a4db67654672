//! The operating system's resolver, kept off the caller's thread.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Instant;

use super::pool::{Failed, Pool};
use super::{Resolver, services};
use crate::LookupError;
use crate::sys::{self, LookupFailure};

/// `getaddrinfo` and the services database, run on a small pool of
/// threads so a caller can stop waiting at its deadline. A lookup that
/// cannot be cancelled (the C library offers no way) finishes in the
/// background and its answer is dropped.
///
/// ```no_run
/// use tcp::resolve::{Resolver, SystemResolver};
/// let ips = SystemResolver::new().lookup_ip("localhost", None)?;
/// assert!(ips.iter().all(|ip| ip.is_loopback()));
/// # Ok::<(), tcp::LookupError>(())
/// ```
#[derive(Clone, Copy, Default)]
pub struct SystemResolver {
    _private: (),
}

impl SystemResolver {
    /// The system resolver.
    pub fn new() -> SystemResolver {
        SystemResolver { _private: () }
    }
}

impl fmt::Debug for SystemResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SystemResolver")
    }
}

impl Resolver for SystemResolver {
    fn lookup_ip(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<IpAddr>, LookupError> {
        self.lookup_addrs(host, deadline).map(|addrs| super::ips(&addrs))
    }

    fn lookup_addrs(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<SocketAddr>, LookupError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, 0)]);
        }
        if host.is_empty() {
            return Err(LookupError::not_found(host));
        }
        let name = host.to_string();
        let result = pool().run(deadline, move || sys::getaddrinfo(&name));
        match result {
            Ok(Ok(addrs)) => Ok(addrs),
            Ok(Err(LookupFailure::NotFound)) => Err(LookupError::not_found(host)),
            Ok(Err(LookupFailure::Other(msg))) => Err(LookupError::other(host, msg)),
            Err(Failed::Deadline) => Err(LookupError::timeout(host)),
            Err(Failed::Busy) => Err(LookupError::other(host, "too many lookups in flight")),
            Err(Failed::Panicked) => Err(LookupError::other(host, "lookup panicked")),
        }
    }

    fn lookup_port(&self, service: &str) -> Result<u16, LookupError> {
        if let Ok(port) = service.parse::<u16>() {
            return Ok(port);
        }
        let name = service.to_string();
        pool()
            .run(None, move || sys::service_port(&name))
            .ok()
            .flatten()
            .or_else(|| services::well_known(service))
            .ok_or_else(|| services::unknown(service))
    }
}

/// The threads `getaddrinfo` runs on: at most 4 at once, 256 queued.
fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool::new("reseau-resolver", 4, 256))
}
