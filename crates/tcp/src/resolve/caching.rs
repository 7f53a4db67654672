//! Lookups remembered for a while: answers for a TTL, optionally served
//! stale while one background refresh runs, and optionally "not found"
//! too.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{Resolver, normalize};
use crate::LookupError;

/// How long a background refresh may take before the resolver under it is
/// told to give up (it is handed this as its deadline).
const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);

/// Remembers successful lookups for `ttl`. Holds at most `capacity` names
/// (1 024 unless set), evicting expired entries first and then the least
/// recently used.
///
/// Two options, both off by default:
/// - [`stale_ttl`](CachingResolver::stale_ttl): an answer that has expired
///   is still served, at once, for up to that much longer, while a single
///   background refresh (on a thread of its own, never the caller's)
///   replaces it. Concurrent stale hits start one refresh, not many.
/// - [`negative_ttl`](CachingResolver::negative_ttl): "no such host" is
///   remembered for that long. Other failures (timeouts, a failing
///   resolver) are never cached.
///
/// ```
/// use std::time::Duration;
/// use tcp::resolve::{CachingResolver, Resolver, StaticResolver};
/// let cache = CachingResolver::new(StaticResolver::new().host("a.test", ["127.0.0.1".parse()?]), Duration::from_secs(30))
///     .stale_ttl(Duration::from_secs(300))
///     .negative_ttl(Duration::from_secs(5));
/// assert_eq!(cache.lookup_ip("a.test", None)?, cache.lookup_ip("A.TEST.", None)?);
/// assert!(cache.lookup_ip("b.test", None).is_err());
/// assert!(cache.lookup_ip("b.test", None).is_err()); // remembered
/// assert_eq!((cache.hits(), cache.negative_hits(), cache.misses()), (1, 1, 2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CachingResolver<R> {
    shared: Arc<Shared<R>>,
    ttl: Duration,
    stale_ttl: Duration,
    negative_ttl: Duration,
    capacity: usize,
}

/// What a background refresh shares with the cache.
struct Shared<R> {
    inner: R,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, Entry>,
    clock: u64,
    hits: u64,
    misses: u64,
    stale_hits: u64,
    negative_hits: u64,
    refreshes: u64,
}

struct Entry {
    /// The addresses (with their scopes), or the "not found" remembered.
    answer: Result<Vec<SocketAddr>, LookupError>,
    expires: Instant,
    /// When it may no longer be served at all: `expires` plus the stale
    /// window (for answers), or `expires` (for "not found").
    usable_until: Instant,
    used: u64,
    /// A background refresh of this name is under way.
    refreshing: bool,
}

impl<R: Resolver> CachingResolver<R> {
    /// Cache `inner`'s successful answers for `ttl`.
    pub fn new(inner: R, ttl: Duration) -> Self {
        CachingResolver {
            shared: Arc::new(Shared { inner, entries: Mutex::default() }),
            ttl,
            stale_ttl: Duration::ZERO,
            negative_ttl: Duration::ZERO,
            capacity: 1024,
        }
    }

    /// Hold at most `capacity` names (at least one).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Serve an expired answer for up to `d` more, at once, while one
    /// background refresh looks the name up again. A failed refresh keeps
    /// the stale answer (the next stale hit tries again); past the stale
    /// window the name is looked up on the caller's thread as usual.
    /// `Duration::ZERO` (the default) turns this off.
    pub fn stale_ttl(mut self, d: Duration) -> Self {
        self.stale_ttl = d;
        self
    }

    /// Remember "not found" answers (`LookupError::is_not_found`) for `d`.
    /// Other failures are never cached. `Duration::ZERO` (the default)
    /// caches no failure at all.
    pub fn negative_ttl(mut self, d: Duration) -> Self {
        self.negative_ttl = d;
        self
    }

    /// Lookups answered from the cache with an answer still fresh.
    pub fn hits(&self) -> u64 {
        self.shared.entries.lock().hits
    }

    /// Lookups passed to the inner resolver on the caller's thread.
    pub fn misses(&self) -> u64 {
        self.shared.entries.lock().misses
    }

    /// Lookups answered with an expired answer inside the stale window.
    pub fn stale_hits(&self) -> u64 {
        self.shared.entries.lock().stale_hits
    }

    /// Lookups answered with a remembered "not found".
    pub fn negative_hits(&self) -> u64 {
        self.shared.entries.lock().negative_hits
    }

    /// Background refreshes started so far.
    pub fn refreshes(&self) -> u64 {
        self.shared.entries.lock().refreshes
    }

    /// Names cached right now (expired ones included until evicted).
    pub fn len(&self) -> usize {
        self.shared.entries.lock().map.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the cache can do for a lookup without asking anyone.
enum Cached {
    Fresh(Vec<SocketAddr>),
    NotFound(LookupError),
    /// An expired answer to serve; `true` if this caller is to start the
    /// refresh.
    Stale(Vec<SocketAddr>, bool),
    Miss,
}

impl<R: Resolver> Shared<R> {
    fn cached(&self, key: &str) -> Cached {
        let mut e = self.entries.lock();
        e.clock += 1;
        let tick = e.clock;
        let now = Instant::now();
        let Some(entry) = e.map.get_mut(key) else {
            e.misses += 1;
            return Cached::Miss;
        };
        if now >= entry.usable_until {
            e.map.remove(key);
            e.misses += 1;
            return Cached::Miss;
        }
        entry.used = tick;
        let found = match &entry.answer {
            Err(not_found) => Cached::NotFound(not_found.clone()),
            Ok(ips) if now < entry.expires => Cached::Fresh(ips.clone()),
            Ok(ips) => Cached::Stale(ips.clone(), !std::mem::replace(&mut entry.refreshing, true)),
        };
        match &found {
            Cached::Fresh(_) => e.hits += 1,
            Cached::NotFound(_) => e.negative_hits += 1,
            Cached::Stale(_, refresh) => {
                e.stale_hits += 1;
                e.refreshes += u64::from(*refresh);
            }
            Cached::Miss => {}
        }
        found
    }

    /// Remember `answer` for `key`, making room first if needed.
    fn store(
        &self,
        key: String,
        answer: Result<Vec<SocketAddr>, LookupError>,
        live: Duration,
        stale: Duration,
        capacity: usize,
    ) {
        let mut e = self.entries.lock();
        let now = Instant::now();
        if e.map.len() >= capacity && !e.map.contains_key(&key) {
            e.map.retain(|_, entry| entry.usable_until > now);
            if e.map.len() >= capacity
                && let Some(oldest) = e.map.iter().min_by_key(|(_, entry)| entry.used).map(|(k, _)| k.clone())
            {
                e.map.remove(&oldest);
            }
        }
        e.clock += 1;
        let used = e.clock;
        let expires = now + live;
        let usable_until = expires + stale;
        e.map.insert(key, Entry { answer, expires, usable_until, used, refreshing: false });
    }

    /// A refresh is over without a new answer: the next stale hit may try
    /// again.
    fn refresh_failed(&self, key: &str) {
        if let Some(entry) = self.entries.lock().map.get_mut(key) {
            entry.refreshing = false;
        }
    }
}

impl<R: Resolver + 'static> CachingResolver<R> {
    /// Look `host` up again on a thread of its own and store the answer.
    fn refresh(&self, host: &str, key: String) {
        let shared = self.shared.clone();
        let (ttl, stale, capacity) = (self.ttl, self.stale_ttl, self.capacity);
        let host = host.to_string();
        let failed_key = key.clone();
        let spawned = std::thread::Builder::new().name("reseau-dns-refresh".into()).spawn(move || {
            match shared.inner.lookup_addrs(&host, Some(Instant::now() + REFRESH_TIMEOUT)) {
                Ok(addrs) if !addrs.is_empty() => shared.store(key, Ok(addrs), ttl, stale, capacity),
                _ => shared.refresh_failed(&key),
            }
        });
        if spawned.is_err() {
            // No thread to refresh with: serve stale until the window ends.
            self.shared.refresh_failed(&failed_key);
        }
    }
}

impl<R: Resolver + 'static> Resolver for CachingResolver<R> {
    fn lookup_ip(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<IpAddr>, LookupError> {
        self.lookup_addrs(host, deadline).map(|addrs| super::ips(&addrs))
    }

    fn lookup_addrs(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<SocketAddr>, LookupError> {
        let key = normalize(host);
        match self.shared.cached(&key) {
            Cached::Fresh(ips) => return Ok(ips),
            Cached::NotFound(err) => return Err(LookupError { host: host.to_string(), ..err }),
            Cached::Stale(ips, refresh) => {
                if refresh {
                    self.refresh(host, key);
                }
                return Ok(ips);
            }
            Cached::Miss => {}
        }
        // Looked up without the lock held: other names stay servable.
        match self.shared.inner.lookup_addrs(host, deadline) {
            Ok(addrs) => {
                self.shared.store(key, Ok(addrs.clone()), self.ttl, self.stale_ttl, self.capacity);
                Ok(addrs)
            }
            Err(err) if err.is_not_found && !self.negative_ttl.is_zero() => {
                let answer = Err(err.clone());
                self.shared.store(key, answer, self.negative_ttl, Duration::ZERO, self.capacity);
                Err(err)
            }
            Err(err) => Err(err),
        }
    }

    fn lookup_port(&self, service: &str) -> Result<u16, LookupError> {
        self.shared.inner.lookup_port(service)
    }
}

impl<R> fmt::Debug for CachingResolver<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingResolver")
            .field("ttl", &self.ttl)
            .field("stale_ttl", &self.stale_ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}
