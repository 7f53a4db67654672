//! Certificates and private keys parsed from PEM in memory: owned `X509`
//! and `EVP_PKEY` references, so a `Config` checks its credentials once, at
//! `build`, and every context it makes later shares them.

use std::cell::Cell;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::ptr::NonNull;

use openssl_sys as sys;

use super::err::clear_errors;

// libcrypto's, not declared by openssl-sys.
unsafe extern "C" {
    fn X509_check_private_key(x: *const sys::X509, k: *const sys::EVP_PKEY) -> libc::c_int;
}

/// An owned reference to an `X509`.
pub(crate) struct Cert(NonNull<sys::X509>);

// SAFETY: an X509 is reference counted with atomic counts and is never
// modified once parsed; OpenSSL allows sharing it between threads.
unsafe impl Send for Cert {}
// SAFETY: as above.
unsafe impl Sync for Cert {}

impl Cert {
    pub(crate) fn as_ptr(&self) -> *mut sys::X509 {
        self.0.as_ptr()
    }

    /// Another reference to the same certificate.
    pub(crate) fn share(&self) -> Cert {
        // SAFETY: live X509; the new reference is owned by the result.
        unsafe { sys::X509_up_ref(self.as_ptr()) };
        Cert(self.0)
    }

    /// Whether `key` is the private key of this certificate's public key.
    pub(crate) fn matches(&self, key: &PrivateKey) -> bool {
        clear_errors();
        // SAFETY: both live; read only.
        let ok = unsafe { X509_check_private_key(self.as_ptr(), key.as_ptr()) } == 1;
        clear_errors();
        ok
    }

    /// Whether the certificate is valid for the DNS name `host` (wildcards
    /// as in verification).
    pub(crate) fn matches_host(&self, host: &[u8]) -> bool {
        // SAFETY: live X509; `host` is read for its length only.
        let ok =
            unsafe { sys::X509_check_host(self.as_ptr(), host.as_ptr().cast(), host.len(), 0, std::ptr::null_mut()) }
                == 1;
        clear_errors();
        ok
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        // SAFETY: we own one reference and drop it once.
        unsafe { sys::X509_free(self.as_ptr()) };
    }
}

impl std::fmt::Debug for Cert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cert")
    }
}

/// An owned reference to an `EVP_PKEY`.
pub(crate) struct PrivateKey(NonNull<sys::EVP_PKEY>);

// SAFETY: as for `Cert`: reference counted, immutable once parsed.
unsafe impl Send for PrivateKey {}
// SAFETY: as above.
unsafe impl Sync for PrivateKey {}

impl PrivateKey {
    pub(crate) fn as_ptr(&self) -> *mut sys::EVP_PKEY {
        self.0.as_ptr()
    }

    /// Another reference to the same key.
    pub(crate) fn share(&self) -> PrivateKey {
        // SAFETY: live EVP_PKEY; the new reference is owned by the result.
        unsafe { sys::EVP_PKEY_up_ref(self.as_ptr()) };
        PrivateKey(self.0)
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        // SAFETY: we own one reference and drop it once.
        unsafe { sys::EVP_PKEY_free(self.as_ptr()) };
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// A certificate chain (leaf first) and the leaf's private key, known to
/// match.
#[derive(Debug)]
pub(crate) struct KeyPair {
    pub(crate) chain: Vec<Cert>,
    pub(crate) key: PrivateKey,
}

impl KeyPair {
    pub(crate) fn leaf(&self) -> &Cert {
        &self.chain[0]
    }

    /// Another reference to the same chain and key.
    pub(crate) fn share(&self) -> KeyPair {
        KeyPair { chain: self.chain.iter().map(Cert::share).collect(), key: self.key.share() }
    }
}

/// Why PEM data did not give what was asked of it, in plain words for the
/// caller to prefix with the file's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PemError {
    /// No PEM block of the wanted kind at all.
    Missing,
    /// A block of the wanted kind that does not parse.
    Malformed,
    /// An encrypted key and no password.
    NeedsPassword,
    /// An encrypted key the password does not open.
    WrongPassword,
}

/// A read-only memory BIO over `data` (not copied), freed on drop.
struct ReadBio<'a>(NonNull<sys::BIO>, PhantomData<&'a [u8]>);

impl<'a> ReadBio<'a> {
    fn new(data: &'a [u8]) -> Option<ReadBio<'a>> {
        let len = libc::c_int::try_from(data.len()).ok()?;
        // SAFETY: the BIO reads `data`, which the lifetime keeps alive and
        // unchanged as long as the BIO.
        NonNull::new(unsafe { sys::BIO_new_mem_buf(data.as_ptr().cast(), len) }).map(|b| ReadBio(b, PhantomData))
    }
}

impl Drop for ReadBio<'_> {
    fn drop(&mut self) {
        // SAFETY: owned, freed once.
        unsafe { sys::BIO_free_all(self.0.as_ptr()) };
    }
}

/// Whether the last error on the queue is PEM's "no start line": nothing
/// (more) of the wanted kind in the data.
fn at_end_of_pem() -> bool {
    // SAFETY: no preconditions.
    let e = unsafe { sys::ERR_peek_last_error() };
    sys::ERR_GET_LIB(e) == sys::ERR_LIB_PEM && sys::ERR_GET_REASON(e) == sys::PEM_R_NO_START_LINE
}

/// What the password callback reads: the password, and whether OpenSSL
/// asked for one (the key is encrypted).
struct Prompt<'a> {
    password: Option<&'a str>,
    asked: Cell<bool>,
}

/// Answers OpenSSL's request for a password from a [`Prompt`]; with no
/// password it answers "none", so OpenSSL fails instead of asking on the
/// terminal.
unsafe extern "C" fn answer_prompt(
    buf: *mut libc::c_char,
    size: libc::c_int,
    _rwflag: libc::c_int,
    user: *mut c_void,
) -> libc::c_int {
    // SAFETY: `user` is the Prompt the parse call below passes, alive for
    // the whole call; null for the certificate parser, which never asks.
    let Some(prompt) = (unsafe { user.cast::<Prompt<'_>>().as_ref() }) else { return 0 };
    prompt.asked.set(true);
    let Some(password) = prompt.password else { return 0 };
    let n = password.len().min(usize::try_from(size).unwrap_or(0));
    // SAFETY: OpenSSL hands a buffer of `size` bytes; we copy at most that.
    unsafe { std::ptr::copy_nonoverlapping(password.as_ptr(), buf.cast::<u8>(), n) };
    libc::c_int::try_from(n).unwrap_or(0)
}

/// Every certificate in `pem`, in order.
pub(crate) fn parse_certs(pem: &[u8]) -> Result<Vec<Cert>, PemError> {
    super::init();
    let bio = ReadBio::new(pem).ok_or(PemError::Malformed)?;
    let mut certs = Vec::new();
    clear_errors();
    loop {
        // SAFETY: live BIO; the callback never fires for certificates, and
        // answers "no password" if it did.
        let x = unsafe {
            sys::PEM_read_bio_X509(bio.0.as_ptr(), std::ptr::null_mut(), Some(answer_prompt), std::ptr::null_mut())
        };
        match NonNull::new(x) {
            Some(x) => certs.push(Cert(x)),
            None => {
                let end = at_end_of_pem();
                clear_errors();
                return match (end, certs.is_empty()) {
                    (true, false) => Ok(certs),
                    (true, true) => Err(PemError::Missing),
                    (false, _) => Err(PemError::Malformed),
                };
            }
        }
    }
}

/// The first private key in `pem`, decrypted with `password` if need be.
pub(crate) fn parse_key(pem: &[u8], password: Option<&str>) -> Result<PrivateKey, PemError> {
    super::init();
    let bio = ReadBio::new(pem).ok_or(PemError::Malformed)?;
    let prompt = Prompt { password, asked: Cell::new(false) };
    clear_errors();
    // SAFETY: live BIO; `prompt` outlives the call.
    let k = unsafe {
        sys::PEM_read_bio_PrivateKey(
            bio.0.as_ptr(),
            std::ptr::null_mut(),
            Some(answer_prompt),
            std::ptr::addr_of!(prompt).cast_mut().cast(),
        )
    };
    clear_errors();
    // OpenSSL 3's decoders leave no telling error for "no key here", so
    // look for the PEM label (PRIVATE KEY, RSA/EC PRIVATE KEY, ENCRYPTED
    // PRIVATE KEY) ourselves.
    let labelled = pem.windows(16).any(|w| w == b"PRIVATE KEY-----");
    match NonNull::new(k) {
        Some(k) => Ok(PrivateKey(k)),
        None if prompt.asked.get() && password.is_none() => Err(PemError::NeedsPassword),
        None if prompt.asked.get() => Err(PemError::WrongPassword),
        None if labelled => Err(PemError::Malformed),
        None => Err(PemError::Missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(parse_certs(b"hello").err(), Some(PemError::Missing));
        assert_eq!(parse_certs(b"").err(), Some(PemError::Missing));
        let bad = b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";
        assert_eq!(parse_certs(bad).err(), Some(PemError::Malformed));
        assert_eq!(parse_key(b"hello", None).err(), Some(PemError::Missing));
        let bad = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(parse_key(bad, None).err(), Some(PemError::Malformed));
    }
}
