//! The client session cache: sessions (TLS 1.2 session IDs and TLS 1.3
//! tickets) kept per `Config` and server, so a later dial can resume.

use std::collections::HashMap;
use std::ffi::CStr;
use std::ptr::NonNull;
use std::sync::OnceLock;

use openssl_sys as sys;
use parking_lot::Mutex;

/// Sessions kept per server key (at most this many servers).
const CAPACITY: usize = 256;

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

/// The sessions of one client `Config`.
#[derive(Default)]
pub(crate) struct SessionCache {
    sessions: Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache").field("servers", &self.sessions.lock().len()).finish()
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
    pub(crate) fn new() -> SessionCache {
        SessionCache::default()
    }

    /// Keep `session` for the key of `ssl`. Returns 1 when the cache took
    /// OpenSSL's reference, 0 when it did not (OpenSSL then frees it).
    ///
    /// # Safety
    /// `ssl` and `session` are the live arguments of a new-session callback.
    pub(super) unsafe fn store(&self, ssl: *mut sys::SSL, session: *mut sys::SSL_SESSION) -> libc::c_int {
        // SAFETY: per the contract; the key is a C string owned by the Ssl.
        let key = unsafe {
            let key = sys::SSL_get_ex_data(ssl, key_index()).cast::<libc::c_char>();
            if key.is_null() || super::SSL_SESSION_is_resumable(session) != 1 {
                return 0;
            }
            CStr::from_ptr(key).to_string_lossy().into_owned()
        };
        let Some(session) = NonNull::new(session) else { return 0 };
        let mut map = self.sessions.lock();
        if map.len() >= CAPACITY
            && !map.contains_key(&key)
            && let Some(k) = map.keys().next().cloned()
        {
            map.remove(&k);
        }
        map.insert(key, Session(session));
        1
    }

    /// Offer the session cached for `key` (if any) on `ssl`'s next handshake.
    ///
    /// # Safety
    /// `ssl` must be a live, not yet handshaken client SSL.
    pub(super) unsafe fn resume(&self, ssl: *mut sys::SSL, key: &str) {
        let map = self.sessions.lock();
        if let Some(s) = map.get(key) {
            // SAFETY: SSL_set_session takes its own reference.
            unsafe { sys::SSL_set_session(ssl, s.0.as_ptr()) };
        }
    }
}
