//! Session ticket keys: the server's, shared by every connection and
//! listener of a `Config`, replaceable while they run.
//!
//! Each 32-byte key given (Go's `SetSessionTicketKeys`) is stretched with
//! SHA-512, as Go does, into a 16-byte name (sent with the ticket, so a
//! server finds the key that sealed it), a 32-byte AES-256-CBC key and a
//! 16-byte HMAC-SHA256 key. The first key seals new tickets; every key
//! opens them, so a fleet sharing keys resumes one another's sessions,
//! and a rotation that keeps the old key last never rejects a live ticket.
//!
//! Without keys of its own a server makes its own (random) and rotates them
//! as Go does: a new one every 24 h, each kept for 7 days, so a ticket is
//! honoured for 7 days (the session timeout is set to match).
//!
//! Keys are secrets: never printed, and wiped when dropped.
//!
//! # Locks
//! `keys` is held while a callback picks or finds a key and sets up the
//! cipher and MAC with it (no user code, no other lock), and while keys
//! are replaced or rotated.

use std::ffi::c_void;
use std::time::{Duration, Instant};

use openssl_sys as sys;
use parking_lot::Mutex;

/// A new own key this often.
const ROTATION: Duration = Duration::from_secs(24 * 60 * 60);
/// An own key (and so its tickets) is honoured this long.
pub(crate) const LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);

unsafe extern "C" {
    fn SHA512(d: *const libc::c_uchar, n: libc::size_t, md: *mut libc::c_uchar) -> *mut libc::c_uchar;
    fn OPENSSL_cleanse(ptr: *mut c_void, len: libc::size_t);
}

/// Wipe `bytes` in a way the compiler cannot elide.
pub(crate) fn wipe(bytes: &mut [u8]) {
    // SAFETY: `bytes` is writable for its length.
    unsafe { OPENSSL_cleanse(bytes.as_mut_ptr().cast(), bytes.len()) };
}

/// One key, stretched.
struct TicketKey {
    name: [u8; 16],
    aes: [u8; 32],
    hmac: [u8; 16],
    created: Instant,
}

impl TicketKey {
    fn from_secret(secret: &[u8; 32], created: Instant) -> TicketKey {
        let mut h = [0u8; 64];
        // SAFETY: reads 32 bytes, writes 64 (SHA-512's size).
        unsafe { SHA512(secret.as_ptr(), secret.len(), h.as_mut_ptr()) };
        let mut key = TicketKey { name: [0; 16], aes: [0; 32], hmac: [0; 16], created };
        key.name.copy_from_slice(&h[..16]);
        key.aes.copy_from_slice(&h[16..48]);
        key.hmac.copy_from_slice(&h[48..]);
        wipe(&mut h);
        key
    }

    /// A random key (a server's own).
    fn random(now: Instant) -> Option<TicketKey> {
        let mut secret = [0u8; 32];
        // SAFETY: writes 32 bytes.
        let ok = unsafe { sys::RAND_bytes(secret.as_mut_ptr(), 32) } == 1;
        let key = ok.then(|| TicketKey::from_secret(&secret, now));
        wipe(&mut secret);
        key
    }
}

impl Drop for TicketKey {
    fn drop(&mut self) {
        wipe(&mut self.aes);
        wipe(&mut self.hmac);
    }
}

/// The keys of one server `Config`.
pub(crate) struct TicketKeys {
    keys: Mutex<Keyring>,
}

struct Keyring {
    /// Newest (sealing) first.
    keys: Vec<TicketKey>,
    /// Given by the user: never rotated or expired here.
    given: bool,
}

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ring = self.keys.lock();
        let whose = if ring.given { "given" } else { "own, rotated daily" };
        write!(f, "TicketKeys(<{} {whose}>)", ring.keys.len())
    }
}

impl TicketKeys {
    /// The user's keys, or (`None`) the server's own, made on first use.
    pub(crate) fn new(secrets: Option<Vec<[u8; 32]>>) -> TicketKeys {
        let keys = TicketKeys { keys: Mutex::new(Keyring { keys: Vec::new(), given: false }) };
        if let Some(secrets) = secrets {
            keys.set(secrets);
        }
        keys
    }

    /// Replace the keys; the caller checked there is at least one. The
    /// secrets given are wiped.
    pub(crate) fn set(&self, mut secrets: Vec<[u8; 32]>) {
        let now = Instant::now();
        let keys: Vec<TicketKey> = secrets.iter().map(|s| TicketKey::from_secret(s, now)).collect();
        for s in &mut secrets {
            wipe(s);
        }
        let old = std::mem::replace(&mut *self.keys.lock(), Keyring { keys, given: true });
        drop(old);
    }

    /// Own keys only: make the first, rotate, and retire, at `now`.
    fn rotate(ring: &mut Keyring, now: Instant) {
        if ring.given {
            return;
        }
        ring.keys.retain(|k| now.saturating_duration_since(k.created) < LIFETIME);
        if ring.keys.first().is_none_or(|k| now.saturating_duration_since(k.created) >= ROTATION)
            && let Some(k) = TicketKey::random(now)
        {
            ring.keys.insert(0, k);
        }
    }

    /// How many keys open tickets, after rotating at `now`.
    #[cfg(test)]
    fn live_at(&self, now: Instant) -> (usize, Option<[u8; 16]>) {
        let mut ring = self.keys.lock();
        TicketKeys::rotate(&mut ring, now);
        (ring.keys.len(), ring.keys.first().map(|k| k.name))
    }

    /// OpenSSL's ticket key callback, for this keyring: seal with the first
    /// key (`enc` 1) or open with the key named `name` (`enc` 0); `tls13`:
    /// the connection negotiated TLS 1.3.
    ///
    /// # Safety
    /// The arguments are a ticket key callback's, live for the call.
    pub(super) unsafe fn callback(
        &self,
        name: *mut libc::c_uchar,
        iv: *mut libc::c_uchar,
        cipher: *mut sys::EVP_CIPHER_CTX,
        hmac: *mut sys::HMAC_CTX,
        enc: libc::c_int,
        tls13: bool,
    ) -> libc::c_int {
        let mut ring = self.keys.lock();
        TicketKeys::rotate(&mut ring, Instant::now());
        // SAFETY: per the contract: `name` is 16 bytes, `iv` 16 (the AES
        // block), the contexts live; the keys are read during the calls.
        unsafe {
            if enc == 1 {
                let Some(key) = ring.keys.first() else { return -1 };
                if sys::RAND_bytes(iv, 16) != 1 {
                    return -1;
                }
                std::ptr::copy_nonoverlapping(key.name.as_ptr(), name, 16);
                let ok =
                    sys::EVP_EncryptInit_ex(cipher, sys::EVP_aes_256_cbc(), std::ptr::null_mut(), key.aes.as_ptr(), iv)
                        == 1
                        && sys::HMAC_Init_ex(
                            hmac,
                            key.hmac.as_ptr().cast(),
                            16,
                            sys::EVP_sha256(),
                            std::ptr::null_mut(),
                        ) == 1;
                return if ok { 1 } else { -1 };
            }
            let wanted = std::slice::from_raw_parts(name, 16);
            // Unknown (retired, or another fleet's): a full handshake.
            let Some(i) = ring.keys.iter().position(|k| k.name == wanted) else { return 0 };
            let key = &ring.keys[i];
            let ok = sys::HMAC_Init_ex(hmac, key.hmac.as_ptr().cast(), 16, sys::EVP_sha256(), std::ptr::null_mut())
                == 1
                && sys::EVP_DecryptInit_ex(cipher, sys::EVP_aes_256_cbc(), std::ptr::null_mut(), key.aes.as_ptr(), iv)
                    == 1;
            match (ok, i) {
                (false, _) => -1,
                // Sealed with the current key, TLS 1.2: resume, no new ticket.
                (true, 0) if !tls13 => 1,
                // An older key: resume, and issue a ticket under the new one.
                // TLS 1.3 always gets a new ticket, as from Go's server (OpenSSL
                // sends none after a resumption unless asked to renew, and its
                // client offers a ticket only once).
                (true, _) => 2,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_keys_rotate_daily_and_live_a_week() {
        let keys = TicketKeys::new(None);
        let t0 = Instant::now();
        let (n, first) = keys.live_at(t0);
        assert_eq!(n, 1);
        assert_eq!(keys.live_at(t0 + ROTATION - Duration::from_secs(1)), (1, first), "the same key within a day");
        let (n, second) = keys.live_at(t0 + ROTATION);
        assert_eq!(n, 2, "a new key after a day, the old one kept");
        assert_ne!(second, first);
        // Day by day, up to seven keys; the first retires after a week.
        for day in 2..7 {
            assert_eq!(keys.live_at(t0 + ROTATION * day).0, day as usize + 1);
        }
        let (n, _) = keys.live_at(t0 + LIFETIME);
        assert_eq!(n, 7, "the first key retired at seven days, a new one made");
        // Idle for a month: only a fresh key remains.
        assert_eq!(keys.live_at(t0 + LIFETIME * 5).0, 1);
    }

    #[test]
    fn given_keys_are_kept_as_given_and_never_printed() {
        let keys = TicketKeys::new(Some(vec![[1; 32], [2; 32]]));
        let t0 = Instant::now();
        let (n, first) = keys.live_at(t0 + LIFETIME * 2);
        assert_eq!(n, 2, "given keys are not rotated or retired");
        assert_eq!(first, Some(TicketKey::from_secret(&[1; 32], t0).name));
        let shown = format!("{keys:?}");
        assert_eq!(shown, "TicketKeys(<2 given>)");
        let mut secret = [9u8; 32];
        wipe(&mut secret);
        assert_eq!(secret, [0; 32]);
    }
}
