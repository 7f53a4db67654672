//! The client session cache: sessions (TLS 1.2 session IDs and TLS 1.3
//! tickets) kept per `Config` and server, so a later dial can resume.
//!
//! # Locks
//! `sessions` is held only to look up, insert or evict; never while
//! calling out, except to `SSL_set_session`, which only takes a reference.

use std::collections::HashMap;
use std::ffi::CStr;
use std::ptr::NonNull;
use std::sync::OnceLock;

use openssl_sys as sys;
use parking_lot::Mutex;

/// Servers whose sessions a client keeps by default, as Go's
/// `NewLRUClientSessionCache` and Reseau.jl.
pub(crate) const DEFAULT_CAPACITY: usize = 64;

/// An owned reference to an `SSL_SESSION`.
struct Session(NonNull<sys::SSL_SESSION>);

// SAFETY: SSL_SESSION is reference counted with atomic counts and immutable
// once established; OpenSSL allows sharing it between threads.
unsafe impl Send for Session {}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: we own exactly one reference and drop it once.
        unsafe { sys::SSL_SESSION_free(self.0.as_ptr()) };
    }
}

/// The sessions of one client `Config`: the newest per server, at most
/// `capacity` servers, the least recently used evicted first.
pub(crate) struct SessionCache {
    capacity: usize,
    sessions: Mutex<Lru>,
}

/// A small LRU map: each entry carries the tick of its last use; eviction
/// scans for the oldest (the map holds a few dozen entries).
#[derive(Default)]
struct Lru {
    map: HashMap<String, (Session, u64)>,
    tick: u64,
}

impl Lru {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("servers", &self.sessions.lock().map.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// The SSL ex-data slot holding a connection's cache key (a C string owned
/// by its `Ssl`).
pub(super) fn key_index() -> libc::c_int {
    static INDEX: OnceLock<libc::c_int> = OnceLock::new();
    // SAFETY: registers an ex-data index with no callbacks; done once.
    *INDEX.get_or_init(|| unsafe { sys::SSL_get_ex_new_index(0, std::ptr::null_mut(), None, None, None) })
}

impl SessionCache {
    /// A cache for at most `capacity` servers (0: nothing is kept).
    pub(crate) fn new(capacity: usize) -> SessionCache {
        SessionCache { capacity, sessions: Mutex::new(Lru::default()) }
    }

    /// Keep `session` for the key of `ssl`. Returns 1 when the cache took
    /// OpenSSL's reference, 0 when it did not (OpenSSL then frees it).
    ///
    /// # Safety
    /// `ssl` is a live client SSL of ours and we own one reference to
    /// `session` (as in a new-session callback).
    pub(super) unsafe fn store(&self, ssl: *mut sys::SSL, session: *mut sys::SSL_SESSION) -> libc::c_int {
        if self.capacity == 0 {
            return 0;
        }
        // SAFETY: per the contract; the key is a C string owned by the Ssl.
        let key = unsafe {
            let key = sys::SSL_get_ex_data(ssl, key_index()).cast::<libc::c_char>();
            if key.is_null() || super::SSL_SESSION_is_resumable(session) != 1 {
                return 0;
            }
            CStr::from_ptr(key).to_string_lossy().into_owned()
        };
        let Some(session) = NonNull::new(session) else { return 0 };
        let evicted;
        {
            let mut lru = self.sessions.lock();
            let tick = lru.next_tick();
            evicted = if lru.map.len() >= self.capacity && !lru.map.contains_key(&key) {
                let oldest = lru.map.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| k.clone());
                oldest.and_then(|k| lru.map.remove(&k))
            } else {
                None
            };
            // The session replaced, if any, is freed here, under the lock:
            // SSL_SESSION_free never calls back into reseau.
            lru.map.insert(key, (Session(session), tick));
        }
        drop(evicted);
        1
    }

    /// Offer the session cached for `key` (if any) on `ssl`'s next
    /// handshake; a hit counts as a use.
    ///
    /// # Safety
    /// `ssl` must be a live, not yet handshaken client SSL.
    pub(super) unsafe fn resume(&self, ssl: *mut sys::SSL, key: &str) {
        let mut lru = self.sessions.lock();
        let tick = lru.next_tick();
        if let Some((s, used)) = lru.map.get_mut(key) {
            *used = tick;
            // SAFETY: SSL_set_session takes its own reference.
            unsafe { sys::SSL_set_session(ssl, s.0.as_ptr()) };
        }
    }
}
