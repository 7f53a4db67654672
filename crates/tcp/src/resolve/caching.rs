//! Successful lookups remembered for a while.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{Resolver, normalize};
use crate::LookupError;

/// Remembers successful lookups for `ttl`; failures are never cached, so a
/// name that starts to resolve is seen at once. Holds at most
/// `capacity` names (1 024 unless set), evicting expired entries first and
/// then the least recently used.
///
/// ```
/// use std::time::Duration;
/// use tcp::resolve::{CachingResolver, Resolver, StaticResolver};
/// let cache = CachingResolver::new(StaticResolver::new().host("a.test", ["127.0.0.1".parse()?]), Duration::from_secs(30));
/// assert_eq!(cache.lookup_ip("a.test", None)?, cache.lookup_ip("A.TEST.", None)?);
/// assert_eq!(cache.hits(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CachingResolver<R> {
    inner: R,
    ttl: Duration,
    capacity: usize,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, Entry>,
    clock: u64,
    hits: u64,
    misses: u64,
}

struct Entry {
    ips: Vec<IpAddr>,
    expires: Instant,
    used: u64,
}

impl<R: Resolver> CachingResolver<R> {
    /// Cache `inner`'s successful answers for `ttl`.
    pub fn new(inner: R, ttl: Duration) -> Self {
        CachingResolver { inner, ttl, capacity: 1024, entries: Mutex::default() }
    }

    /// Hold at most `capacity` names (at least one).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Lookups answered from the cache.
    pub fn hits(&self) -> u64 {
        self.entries.lock().hits
    }

    /// Lookups passed to the inner resolver.
    pub fn misses(&self) -> u64 {
        self.entries.lock().misses
    }

    /// Names cached right now (expired ones included until evicted).
    pub fn len(&self) -> usize {
        self.entries.lock().map.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<R: Resolver> Resolver for CachingResolver<R> {
    fn lookup_ip(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<IpAddr>, LookupError> {
        let key = normalize(host);
        {
            let mut e = self.entries.lock();
            e.clock += 1;
            let now_tick = e.clock;
            if let Some(entry) = e.map.get_mut(&key) {
                if entry.expires > Instant::now() {
                    entry.used = now_tick;
                    let ips = entry.ips.clone();
                    e.hits += 1;
                    return Ok(ips);
                }
                e.map.remove(&key);
            }
            e.misses += 1;
        }
        // Looked up without the lock held: other names stay servable.
        let ips = self.inner.lookup_ip(host, deadline)?;
        let mut e = self.entries.lock();
        if e.map.len() >= self.capacity && !e.map.contains_key(&key) {
            let now = Instant::now();
            e.map.retain(|_, entry| entry.expires > now);
            if e.map.len() >= self.capacity {
                if let Some(oldest) = e.map.iter().min_by_key(|(_, entry)| entry.used).map(|(k, _)| k.clone()) {
                    e.map.remove(&oldest);
                }
            }
        }
        e.clock += 1;
        let used = e.clock;
        e.map.insert(key, Entry { ips: ips.clone(), expires: Instant::now() + self.ttl, used });
        Ok(ips)
    }

    fn lookup_port(&self, service: &str) -> Result<u16, LookupError> {
        self.inner.lookup_port(service)
    }
}

impl<R> fmt::Debug for CachingResolver<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingResolver")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}
