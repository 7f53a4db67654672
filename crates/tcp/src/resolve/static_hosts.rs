//! Names and services pinned by the caller.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use super::{Resolver, normalize, services};
use crate::LookupError;

/// A fixed table of names and services, for tests and pinned deployments.
/// Names it does not know go to the fallback resolver, if one is set, and
/// are otherwise "no such host".
///
/// ```
/// use std::sync::Arc;
/// use tcp::resolve::{Resolver, StaticResolver, default_resolver};
/// let r = StaticResolver::new()
///     .host("api.internal", ["::1".parse()?, "127.0.0.1".parse()?])
///     .port("api", 8443)
///     .fallback(default_resolver());
/// assert_eq!(r.lookup_ip("API.internal", None)?.len(), 2);
/// assert_eq!(r.lookup_port("api")?, 8443);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct StaticResolver {
    hosts: HashMap<String, Vec<IpAddr>>,
    ports: HashMap<String, u16>,
    fallback: Option<Arc<dyn Resolver>>,
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> StaticResolver {
        StaticResolver::default()
    }

    /// Map `name` (case-insensitive, trailing dot ignored) to `ips`, in
    /// that order.
    pub fn host(mut self, name: impl Into<String>, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        self.hosts.insert(normalize(&name.into()), ips.into_iter().collect());
        self
    }

    /// Map service `name` (case-insensitive) to `port`.
    pub fn port(mut self, name: impl Into<String>, port: u16) -> Self {
        self.ports.insert(name.into().to_ascii_lowercase(), port);
        self
    }

    /// Ask `resolver` about names and services not in the table.
    pub fn fallback(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.fallback = Some(resolver);
        self
    }
}

impl Resolver for StaticResolver {
    fn lookup_ip(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<IpAddr>, LookupError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if let Some(ips) = self.hosts.get(&normalize(host)) {
            return Ok(ips.clone());
        }
        match &self.fallback {
            Some(f) => f.lookup_ip(host, deadline),
            None => Err(LookupError::not_found(host)),
        }
    }

    fn lookup_addrs(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<SocketAddr>, LookupError> {
        match &self.fallback {
            // Names it does not know keep the fallback's scopes.
            Some(f) if host.parse::<IpAddr>().is_err() && !self.hosts.contains_key(&normalize(host)) => {
                f.lookup_addrs(host, deadline)
            }
            _ => Ok(self.lookup_ip(host, deadline)?.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect()),
        }
    }

    fn lookup_port(&self, service: &str) -> Result<u16, LookupError> {
        if let Some(&port) = self.ports.get(&service.to_ascii_lowercase()) {
            return Ok(port);
        }
        match &self.fallback {
            Some(f) => f.lookup_port(service),
            None => services::well_known(service).ok_or_else(|| services::unknown(service)),
        }
    }
}

impl fmt::Debug for StaticResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticResolver")
            .field("hosts", &self.hosts)
            .field("ports", &self.ports)
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}
