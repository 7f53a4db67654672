//! Certificates and private keys parsed from PEM in memory: owned `X509`
//! and `EVP_PKEY` references, so a `Config` checks its credentials once, at
//! `build`, and every context it makes later shares them.

use std::cell::Cell;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::ptr::NonNull;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl_sys as sys;

use super::err::clear_errors;

// libcrypto's, not declared by openssl-sys.
unsafe extern "C" {
    fn X509_check_private_key(x: *const sys::X509, k: *const sys::EVP_PKEY) -> libc::c_int;
    fn X509_NAME_print_ex(
        out: *mut sys::BIO,
        name: *const sys::X509_NAME,
        indent: libc::c_int,
        flags: libc::c_ulong,
    ) -> libc::c_int;
    fn GENERAL_NAMES_free(names: *mut sys::stack_st_GENERAL_NAME);
    fn X509_get0_notAfter(x: *const sys::X509) -> *const sys::ASN1_TIME;
    fn ASN1_TIME_to_tm(t: *const sys::ASN1_TIME, tm: *mut libc::tm) -> libc::c_int;
}

/// `XN_FLAG_RFC2253`: `CN=localhost,O=Example`, most specific first.
const XN_FLAG_RFC2253: libc::c_ulong = 0x0111_0317;

/// An owned reference to an `X509`.
pub(crate) struct Cert(NonNull<sys::X509>);

/// How host names are matched, as Go (since 1.15), rustls and browsers do:
/// against the DNS names only, never the subject CN, and a wildcard only as
/// a whole leftmost label (OpenSSL's default already lets it match one
/// label, never several).
pub(crate) const HOST_FLAGS: libc::c_uint =
    sys::X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | sys::X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS;

// SAFETY: an X509 is reference counted with atomic counts and is never
// modified once parsed; OpenSSL allows sharing it between threads.
unsafe impl Send for Cert {}
// SAFETY: as above.
unsafe impl Sync for Cert {}

impl Cert {
    /// Take over a reference the caller owns.
    ///
    /// # Safety
    /// `x` is a live X509 whose one reference passes to the result.
    pub(crate) unsafe fn from_owned(x: NonNull<sys::X509>) -> Cert {
        Cert(x)
    }

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
    /// as in verification, [`HOST_FLAGS`]).
    pub(crate) fn matches_host(&self, host: &[u8]) -> bool {
        // SAFETY: live X509; `host` is read for its length only.
        let ok = unsafe {
            sys::X509_check_host(self.as_ptr(), host.as_ptr().cast(), host.len(), HOST_FLAGS, std::ptr::null_mut())
        } == 1;
        clear_errors();
        ok
    }
}

impl Cert {
    /// The subject, RFC 2253 style (`CN=localhost`).
    pub(crate) fn subject(&self) -> String {
        // SAFETY: live X509; the name is owned by it.
        name_text(unsafe { sys::X509_get_subject_name(self.as_ptr()) })
    }

    /// The issuer, RFC 2253 style.
    pub(crate) fn issuer(&self) -> String {
        // SAFETY: live X509; the name is owned by it.
        name_text(unsafe { sys::X509_get_issuer_name(self.as_ptr()) })
    }

    /// The end of the validity period.
    pub(crate) fn not_after(&self) -> Option<SystemTime> {
        // SAFETY: live X509; the time is owned by it; `tm` is written by
        // ASN1_TIME_to_tm and read by timegm.
        let secs = unsafe {
            let t = X509_get0_notAfter(self.as_ptr());
            let mut tm: libc::tm = std::mem::zeroed();
            if t.is_null() || ASN1_TIME_to_tm(t, &mut tm) != 1 {
                return None;
            }
            libc::timegm(&mut tm)
        };
        match u64::try_from(secs) {
            Ok(s) => UNIX_EPOCH.checked_add(Duration::from_secs(s)),
            Err(_) => UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs())),
        }
    }

    /// The DNS names and IP addresses of the subjectAltName extension.
    pub(crate) fn alt_names(&self) -> (Vec<String>, Vec<IpAddr>) {
        let (mut dns, mut ips) = (Vec::new(), Vec::new());
        // SAFETY: live X509; the decoded stack is ours and freed below; its
        // entries' strings are read before that.
        unsafe {
            let names = sys::X509_get_ext_d2i(
                self.as_ptr(),
                sys::NID_subject_alt_name,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
            .cast::<sys::stack_st_GENERAL_NAME>();
            if names.is_null() {
                clear_errors();
                return (dns, ips);
            }
            let stack = names.cast::<sys::OPENSSL_STACK>();
            for i in 0..sys::OPENSSL_sk_num(stack) {
                let name = sys::OPENSSL_sk_value(stack, i).cast::<sys::GENERAL_NAME>();
                let Some(name) = name.as_ref() else { continue };
                let bytes = || {
                    let s = name.d.cast::<sys::ASN1_STRING>();
                    let (p, n) = (sys::ASN1_STRING_get0_data(s), sys::ASN1_STRING_length(s));
                    if p.is_null() || n <= 0 { &[][..] } else { std::slice::from_raw_parts(p, n as usize) }
                };
                match name.type_ {
                    sys::GEN_DNS => dns.push(String::from_utf8_lossy(bytes()).into_owned()),
                    sys::GEN_IPADD => match bytes().len() {
                        4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(bytes()).unwrap_or_default())),
                        16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(bytes()).unwrap_or_default())),
                        _ => {}
                    },
                    _ => {}
                }
            }
            GENERAL_NAMES_free(names);
        }
        (dns, ips)
    }
}

/// An `X509_NAME` as text.
fn name_text(name: *const sys::X509_NAME) -> String {
    if name.is_null() {
        return String::new();
    }
    // SAFETY: a fresh memory BIO, written by X509_NAME_print_ex, read and
    // freed here; `name` is live for the call.
    unsafe {
        let bio = sys::BIO_new(sys::BIO_s_mem());
        if bio.is_null() {
            return String::new();
        }
        X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
        let mut p: *mut libc::c_char = std::ptr::null_mut();
        let n = sys::BIO_get_mem_data(bio, &mut p);
        let text = if p.is_null() || n <= 0 {
            String::new()
        } else {
            String::from_utf8_lossy(std::slice::from_raw_parts(p.cast::<u8>(), n as usize)).into_owned()
        };
        sys::BIO_free_all(bio);
        clear_errors();
        text
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

/// Parse one DER certificate.
pub(crate) fn cert_from_der(der: &[u8]) -> Option<Cert> {
    super::init();
    let len = libc::c_long::try_from(der.len()).ok()?;
    let mut p = der.as_ptr();
    // SAFETY: reads at most `len` bytes from `der`; the result is owned.
    let x = unsafe { sys::d2i_X509(std::ptr::null_mut(), &mut p, len) };
    clear_errors();
    NonNull::new(x).map(Cert)
}

/// The DER encoding of a certificate.
///
/// # Safety
/// `cert` must be a live X509.
pub(crate) unsafe fn der(cert: *mut sys::X509) -> Vec<u8> {
    // SAFETY: per the contract; first call sizes, second call writes into a
    // buffer of exactly that size (and advances our copy of the pointer).
    unsafe {
        let len = sys::i2d_X509(cert, std::ptr::null_mut());
        if len <= 0 {
            return Vec::new();
        }
        let mut buf = vec![0u8; len as usize];
        let mut p = buf.as_mut_ptr();
        sys::i2d_X509(cert, &mut p);
        buf
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
        assert!(cert_from_der(b"\x30\x03\x02\x01\x01").is_none());
    }
}
