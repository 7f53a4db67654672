//! Choosing a server's certificate at handshake time, outside OpenSSL.
//!
//! A server context with a resolver has a ClientHello callback. The first
//! time OpenSSL calls it for a connection, it copies what the resolver needs
//! (SNI, ALPN offers) into the connection's [`Hello`] and suspends the
//! handshake (`SSL_CLIENT_HELLO_RETRY`): `SSL_do_handshake` returns with
//! `SSL_ERROR_WANT_CLIENT_HELLO_CB`. The driver runs the resolver with the
//! engine unlocked, hands its answer back with [`Hello::answer`], and calls
//! the handshake again; OpenSSL calls the callback again, which now
//! installs the chosen certificate (or leaves the configured ones, or fails
//! the handshake). The OCSP status callback staples the chosen key's
//! response for clients that asked.
//!
//! # Locks
//! None: a `Hello` belongs to one `Ssl`, which one thread uses at a time.

use std::ffi::c_void;
use std::sync::OnceLock;

use openssl_sys as sys;

use super::x509::KeyPair;

/// What a server knows of the client before it picks a certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HelloInfo {
    /// The SNI host name, if the client sent one.
    pub(crate) server_name: Option<String>,
    /// The ALPN protocols offered, in the client's order.
    pub(crate) alpn: Vec<String>,
}

/// The certificate a resolver chose, ready for OpenSSL.
pub(crate) struct Chosen {
    pub(crate) pair: KeyPair,
    /// A DER OCSP response to staple.
    pub(crate) ocsp: Option<Vec<u8>>,
}

/// Where one connection stands with its resolver.
pub(crate) enum Hello {
    /// OpenSSL has not yet shown us the ClientHello.
    Waiting,
    /// Suspended: the resolver must look at this.
    Asked(HelloInfo),
    /// The resolver's answer: a certificate, `None` for the configured
    /// ones, or a refusal.
    Answered(Result<Option<Chosen>, ()>),
}

impl Hello {
    /// What the resolver should see, while the handshake is suspended.
    pub(crate) fn asked(&self) -> Option<&HelloInfo> {
        match self {
            Hello::Asked(info) => Some(info),
            _ => None,
        }
    }

    /// Record the resolver's answer; the next handshake call applies it.
    pub(crate) fn answer(&mut self, answer: Result<Option<Chosen>, ()>) {
        *self = Hello::Answered(answer);
    }

    /// The stapled OCSP response of the chosen certificate, if any.
    fn ocsp(&self) -> Option<&[u8]> {
        match self {
            Hello::Answered(Ok(Some(Chosen { ocsp: Some(der), .. }))) => Some(der),
            _ => None,
        }
    }

    /// Whether the resolver chose a certificate (the SNI table then stays
    /// out of it).
    pub(crate) fn chose(&self) -> bool {
        matches!(self, Hello::Answered(Ok(Some(_))))
    }
}

/// The SSL ex-data slot holding a server connection's `Hello` (a `Box`
/// owned by its `Ssl`).
pub(super) fn hello_index() -> libc::c_int {
    static INDEX: OnceLock<libc::c_int> = OnceLock::new();
    // SAFETY: registers an ex-data index with no callbacks; done once.
    *INDEX.get_or_init(|| unsafe { sys::SSL_get_ex_new_index(0, std::ptr::null_mut(), None, None, None) })
}

/// The `Hello` of `ssl`, if it has one.
///
/// # Safety
/// `ssl` is live, and no other reference to its `Hello` is in use.
pub(super) unsafe fn hello_of<'a>(ssl: *const sys::SSL) -> Option<&'a mut Hello> {
    // SAFETY: per the contract; the slot holds null or a live Box<Hello>.
    unsafe { sys::SSL_get_ex_data(ssl, hello_index()).cast::<Hello>().as_mut() }
}

/// Install `pair` on `ssl` in place of whatever it had.
///
/// # Safety
/// `ssl` is live.
pub(super) unsafe fn use_pair(ssl: *mut sys::SSL, pair: &KeyPair) -> bool {
    // SAFETY: per the contract; OpenSSL takes references of its own (use_*
    // up-ref, CHAIN_CERT with larg 1 is add1).
    unsafe {
        // Clear every slot first: OpenSSL keeps one pair per key type, and
        // an RSA pair beside an EC one would let it pick either.
        super::ctx::SSL_certs_clear(ssl);
        sys::SSL_use_certificate(ssl, pair.leaf().as_ptr()) == 1
            && sys::SSL_use_PrivateKey(ssl, pair.key.as_ptr()) == 1
            && pair.chain[1..].iter().all(|c| sys::SSL_ctrl(ssl, sys::SSL_CTRL_CHAIN_CERT, 1, c.as_ptr().cast()) == 1)
    }
}

/// A ClientHello extension's body, if the client sent it.
///
/// # Safety
/// `ssl` is live and inside its ClientHello callback.
unsafe fn extension<'a>(ssl: *mut sys::SSL, kind: libc::c_uint) -> Option<&'a [u8]> {
    let mut data: *const libc::c_uchar = std::ptr::null();
    let mut len: libc::size_t = 0;
    // SAFETY: per the contract; the data is owned by the SSL and valid for
    // the callback, within which the caller uses it.
    unsafe {
        if sys::SSL_client_hello_get0_ext(ssl, kind, &mut data, &mut len) != 1 || data.is_null() {
            return None;
        }
        Some(std::slice::from_raw_parts(data, len))
    }
}

/// A big-endian u16 length, then that many bytes: (the bytes, the rest).
fn vector16(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = b.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// The host name in a server_name extension body (RFC 6066 §3).
pub(crate) fn parse_sni(body: &[u8]) -> Option<String> {
    let (mut list, _) = vector16(body)?;
    while let Some((&kind, rest)) = list.split_first() {
        let (name, rest) = vector16(rest)?;
        if kind == 0 {
            return std::str::from_utf8(name).ok().filter(|n| !n.is_empty()).map(str::to_owned);
        }
        list = rest;
    }
    None
}

/// The protocols in an ALPN extension body (RFC 7301 §3.1).
pub(crate) fn parse_alpn(body: &[u8]) -> Vec<String> {
    let Some((mut list, _)) = vector16(body) else { return Vec::new() };
    let mut out = Vec::new();
    while let Some((&len, rest)) = list.split_first() {
        let len = usize::from(len);
        if rest.len() < len {
            break;
        }
        out.push(String::from_utf8_lossy(&rest[..len]).into_owned());
        list = &rest[len..];
    }
    out
}

/// `SSL_AD_INTERNAL_ERROR`, as Go's server sends when `GetCertificate`
/// fails.
const AD_INTERNAL_ERROR: libc::c_int = 80;
/// `TLSEXT_TYPE_server_name`, `TLSEXT_TYPE_application_layer_protocol_negotiation`.
const EXT_SERVER_NAME: libc::c_uint = 0;
const EXT_ALPN: libc::c_uint = 16;

pub(super) unsafe extern "C" fn client_hello(
    ssl: *mut sys::SSL,
    alert: *mut libc::c_int,
    _arg: *mut c_void,
) -> libc::c_int {
    // SAFETY: OpenSSL calls this with a live SSL of one of our server
    // contexts, during a handshake step, while the Ssl (and its Hello) is
    // borrowed by that step alone.
    let Some(hello) = (unsafe { hello_of(ssl) }) else { return sys::SSL_CLIENT_HELLO_SUCCESS };
    match hello {
        Hello::Waiting | Hello::Asked(_) => {
            // SAFETY: inside the ClientHello callback.
            let (sni, alpn) = unsafe { (extension(ssl, EXT_SERVER_NAME), extension(ssl, EXT_ALPN)) };
            let info =
                HelloInfo { server_name: sni.and_then(parse_sni), alpn: alpn.map(parse_alpn).unwrap_or_default() };
            *hello = Hello::Asked(info);
            sys::SSL_CLIENT_HELLO_RETRY
        }
        Hello::Answered(Ok(None)) => sys::SSL_CLIENT_HELLO_SUCCESS,
        Hello::Answered(Ok(Some(chosen))) => {
            // SAFETY: a live SSL.
            if unsafe { use_pair(ssl, &chosen.pair) } {
                sys::SSL_CLIENT_HELLO_SUCCESS
            } else {
                // SAFETY: OpenSSL's out-parameter.
                unsafe { *alert = AD_INTERNAL_ERROR };
                sys::SSL_CLIENT_HELLO_ERROR
            }
        }
        Hello::Answered(Err(())) => {
            // SAFETY: OpenSSL's out-parameter.
            unsafe { *alert = AD_INTERNAL_ERROR };
            sys::SSL_CLIENT_HELLO_ERROR
        }
    }
}

/// The server's OCSP callback: staple the chosen key's response, if it has
/// one, for a client that asked (OpenSSL calls this only then).
pub(super) unsafe extern "C" fn staple(ssl: *mut sys::SSL, _arg: *mut c_void) -> libc::c_int {
    // SAFETY: as for `client_hello`: a live SSL, its Hello not otherwise in use.
    let Some(der) = (unsafe { hello_of(ssl) }).and_then(|h| h.ocsp()) else { return sys::SSL_TLSEXT_ERR_NOACK };
    // SAFETY: OpenSSL takes ownership of a buffer from its own allocator,
    // which we fill with the response before handing it over.
    unsafe {
        let buf = sys::CRYPTO_malloc(der.len().max(1), c"reseau".as_ptr(), 0).cast::<u8>();
        if buf.is_null() {
            return sys::SSL_TLSEXT_ERR_NOACK;
        }
        std::ptr::copy_nonoverlapping(der.as_ptr(), buf, der.len());
        if sys::SSL_set_tlsext_status_ocsp_resp(ssl, buf, der.len() as libc::c_long) != 1 {
            sys::CRYPTO_free(buf.cast(), c"reseau".as_ptr(), 0);
            return sys::SSL_TLSEXT_ERR_NOACK;
        }
    }
    sys::SSL_TLSEXT_ERR_OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_parse_and_garbage_does_not() {
        let sni = [0, 14, 0, 0, 11, b'e', b'x', b'a', b'm', b'p', b'l', b'e', b'.', b'c', b'o', b'm'];
        assert_eq!(parse_sni(&sni).as_deref(), Some("example.com"));
        let alpn = [0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1'];
        assert_eq!(parse_alpn(&alpn), ["h2", "http/1.1"]);
        for junk in [&[][..], &[0], &[0, 9, 0], &[255, 255, 1, 2, 3], &[0, 3, 0, 0, 9]] {
            assert_eq!(parse_sni(junk), None, "{junk:?}");
            let _ = parse_alpn(junk);
        }
        assert_eq!(parse_alpn(&[0, 3, 5, b'a', b'b']), Vec::<String>::new());
    }
}
