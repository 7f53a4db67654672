//! The FFI seam: every call into OpenSSL goes through the safe owners in
//! this module (`SslCtx`, `Ssl`, `MemBio`), which free what they own exactly
//! once. Nothing outside `ffi` holds a raw OpenSSL pointer.

mod bio;
mod ctx;
mod err;
mod hello;
mod session;
mod ssl;
mod tickets;
mod x509;

pub(crate) use bio::MemBio;
pub(crate) use ctx::{SslCtx, VerifyMode};
pub(crate) use err::drain_errors;
pub(crate) use hello::{Chosen, HelloInfo};
pub(crate) use session::{DEFAULT_CAPACITY as DEFAULT_SESSION_CACHE_CAPACITY, SessionCache};
pub(crate) use ssl::{Outcome, Progress, Ssl};
pub(crate) use tickets::{TicketKeys, wipe};
pub(crate) use x509::{Cert, KeyPair, PemError, cert_from_der, parse_certs, parse_key};

use std::ffi::CStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Once;

use openssl_sys as sys;

// Symbols OpenSSL 3 exports that openssl-sys does not bind.
unsafe extern "C" {
    fn ERR_error_string_n(e: libc::c_ulong, buf: *mut libc::c_char, len: libc::size_t);
    fn SSL_SESSION_is_resumable(s: *const sys::SSL_SESSION) -> libc::c_int;
    fn SSL_group_to_name(s: *mut sys::SSL, id: libc::c_int) -> *const libc::c_char;
    fn ERR_peek_error() -> libc::c_ulong;
}

/// Initialise the library once per process (OpenSSL 1.1+ also does this
/// lazily; doing it up front keeps the first handshake's cost predictable).
pub(crate) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // SAFETY: no preconditions; settings pointer may be null.
        unsafe { sys::OPENSSL_init_ssl(0, std::ptr::null_mut()) };
    });
}

/// The linked OpenSSL's version string, e.g. "OpenSSL 3.0.19 27 Jan 2026".
pub fn version() -> String {
    // SAFETY: OpenSSL_version returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(sys::OpenSSL_version(sys::OPENSSL_VERSION)) }.to_string_lossy().into_owned()
}

/// OpenSSL's compiled-in default CA file and directory.
pub(crate) fn default_ca_paths() -> [std::path::PathBuf; 2] {
    let path = |p: *const libc::c_char| {
        // SAFETY: static NUL-terminated strings from libcrypto.
        let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
        std::path::PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
    };
    // SAFETY: no preconditions; both return static strings.
    unsafe { [path(sys::X509_get_default_cert_file()), path(sys::X509_get_default_cert_dir())] }
}
