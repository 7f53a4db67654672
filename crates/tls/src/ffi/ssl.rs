//! `Ssl`: an owned `SSL` wired to two memory BIOs. It never touches a
//! socket: ciphertext goes in with [`Ssl::feed`] and comes out with
//! [`Ssl::take_output`], and the caller moves it to and from the network.

use std::ffi::{CStr, CString};
use std::net::IpAddr;
use std::ptr::NonNull;
use std::sync::Arc;

use openssl_sys as sys;

use super::bio::BioRef;
use super::err::{clear_errors, drain_errors, drain_reasons, text};
use super::hello::{Chosen, Hello, HelloInfo, hello_index};
use super::x509::{Cert, der};
use super::{MemBio, SessionCache, SslCtx};
use crate::error::{OpensslError, VerifyError};

/// What an OpenSSL call came to.
#[derive(Debug)]
pub(crate) enum Outcome<T> {
    /// It completed.
    Done(T),
    /// It needs more ciphertext from the peer: feed some and call again.
    WantRead,
    /// The peer sent close_notify.
    Closed,
    /// It failed; `code` is `SSL_get_error`'s, `message` the error queue
    /// (and the verification result) as text, and `cause` the same, typed
    /// (an `OpensslError` inside, kind `InvalidData`), for the `TlsError`.
    Failed { code: i32, message: String, cause: Option<std::io::Error> },
}

/// How far a handshake call got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// The handshake is complete.
    Finished,
    /// A flight is complete and queued for the peer (OpenSSL flushed):
    /// send it, then call again at once; the work that follows the flight
    /// (deriving the next keys) is done while the peer reads it.
    Flight,
    /// A server's handshake is suspended until its certificate resolver
    /// answers (see `hello.rs`): read [`Ssl::hello_asked`], give the answer
    /// to [`Ssl::answer_hello`], and call again.
    Certificate,
}

/// An owned `SSL`, and the memory BIOs it owns: reached only through
/// [`BioRef`]s borrowed from `self`, so no handle outlives the `SSL`.
pub(crate) struct Ssl {
    ptr: NonNull<sys::SSL>,
    /// Ciphertext from the peer, for OpenSSL to read.
    rbio: NonNull<sys::BIO>,
    /// Ciphertext from OpenSSL, for the peer.
    wbio: NonNull<sys::BIO>,
    /// Keeps the context (and its callback data) alive as long as we are.
    _ctx: Arc<SslCtx>,
    /// The session-cache key, pointed at by the SSL's ex-data.
    session_key: Option<CString>,
    /// The host name or IP the peer's certificate must name, for the
    /// message when it does not.
    expected_name: Option<String>,
    /// A server's dealings with its certificate resolver: a `Box` turned
    /// raw (OpenSSL's callbacks reach it through the SSL's ex-data), freed
    /// in `Drop` after the SSL; null without a resolver.
    hello: *mut Hello,
}

// SAFETY: an SSL may move between threads; it is never used by two at once
// (every `Ssl` lives behind its connection's engine lock).
unsafe impl Send for Ssl {}

impl Ssl {
    /// A new client or server `SSL` from `ctx`, with fresh memory BIOs.
    pub(crate) fn new(ctx: &Arc<SslCtx>, server: bool) -> Result<Ssl, String> {
        clear_errors();
        // SAFETY: live context; the new SSL is owned by the returned Ssl.
        let ptr = NonNull::new(unsafe { sys::SSL_new(ctx.as_ptr()) }).ok_or_else(drain_errors)?;
        // Build the wrapper before the BIOs so a failure below frees the SSL.
        let rbio = MemBio::new();
        let wbio = MemBio::new();
        let (rbio, wbio) = match (rbio, wbio) {
            (Ok(r), Ok(w)) => (r, w),
            (Err(e), _) | (_, Err(e)) => {
                // SAFETY: nobody else has seen `ptr`; freed once here.
                unsafe { sys::SSL_free(ptr.as_ptr()) };
                return Err(e);
            }
        };
        let (rbio, wbio) = (rbio.into_raw(), wbio.into_raw());
        // SAFETY: the SSL takes ownership of both BIOs and frees them with
        // itself; we keep the pointers only to lend out as `BioRef`s.
        unsafe {
            sys::SSL_set_bio(ptr.as_ptr(), rbio.as_ptr(), wbio.as_ptr());
            if server {
                sys::SSL_set_accept_state(ptr.as_ptr());
            } else {
                sys::SSL_set_connect_state(ptr.as_ptr());
            }
        }
        let mut ssl = Ssl {
            ptr,
            rbio,
            wbio,
            _ctx: ctx.clone(),
            session_key: None,
            expected_name: None,
            hello: std::ptr::null_mut(),
        };
        if server && ctx.resolves() {
            ssl.hello = Box::into_raw(Box::new(Hello::Waiting));
            // SAFETY: live SSL; the slot points at our Hello, which outlives
            // the SSL (freed after it in Drop).
            unsafe { sys::SSL_set_ex_data(ssl.raw(), hello_index(), ssl.hello.cast()) };
        } else if !server {
            // Always ask for a stapled OCSP response, as Go's client does.
            // SAFETY: live SSL; a plain integer argument.
            unsafe { sys::SSL_set_tlsext_status_type(ssl.raw(), sys::TLSEXT_STATUSTYPE_ocsp) };
        }
        Ok(ssl)
    }

    /// What a suspended server handshake's resolver should look at.
    pub(crate) fn hello_asked(&self) -> Option<HelloInfo> {
        // SAFETY: our own Hello, if any; no handshake call is running (we
        // are borrowed), so OpenSSL does not touch it meanwhile.
        unsafe { self.hello.as_ref() }.and_then(|h| h.asked().cloned())
    }

    /// The resolver's answer, applied by the next handshake call.
    pub(crate) fn answer_hello(&mut self, answer: Result<Option<Chosen>, ()>) {
        // SAFETY: as in `hello_asked`, and `&mut self` makes this the only
        // access.
        if let Some(h) = unsafe { self.hello.as_mut() } {
            h.answer(answer);
        }
    }

    /// The stapled OCSP response the server sent (clients), DER.
    pub(crate) fn ocsp_response(&self) -> Option<Vec<u8>> {
        let mut p: *mut libc::c_uchar = std::ptr::null_mut();
        // SAFETY: live SSL; the response is owned by the SSL and copied.
        unsafe {
            let len = sys::SSL_get_tlsext_status_ocsp_resp(self.raw(), &mut p);
            if p.is_null() || len <= 0 {
                return None;
            }
            Some(std::slice::from_raw_parts(p, len as usize).to_vec())
        }
    }

    fn raw(&self) -> *mut sys::SSL {
        self.ptr.as_ptr()
    }

    /// Send `host` as SNI.
    pub(crate) fn set_sni(&mut self, host: &str) -> Result<(), String> {
        let c = CString::new(host).map_err(|_| "server name contains a NUL byte".to_string())?;
        clear_errors();
        // SAFETY: live SSL; the name is copied.
        let ok = unsafe { sys::SSL_set_tlsext_host_name(self.raw(), c.as_ptr() as *mut _) } == 1;
        if ok { Ok(()) } else { Err(format!("cannot set SNI {host:?}: {}", drain_errors())) }
    }

    /// Require the peer certificate to name `host`, as Go checks it: its
    /// DNS names only, never the subject CN, and a wildcard only as the
    /// whole leftmost label (`*.example.com`, never `f*.example.com`),
    /// matching one label.
    pub(crate) fn verify_host(&mut self, host: &str) -> Result<(), String> {
        clear_errors();
        // SAFETY: live SSL; its verify param is owned by it; the name is copied.
        let ok = unsafe {
            let param = sys::SSL_get0_param(self.raw());
            sys::X509_VERIFY_PARAM_set_hostflags(param, super::x509::HOST_FLAGS);
            sys::X509_VERIFY_PARAM_set1_host(param, host.as_ptr().cast(), host.len()) == 1
        };
        if !ok {
            return Err(format!("cannot verify host {host:?}: {}", drain_errors()));
        }
        self.expected_name = Some(host.to_string());
        Ok(())
    }

    /// Require the peer certificate to carry `ip` as an IP address SAN.
    pub(crate) fn verify_ip(&mut self, ip: IpAddr) -> Result<(), String> {
        let bytes: Vec<u8> = match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        clear_errors();
        // SAFETY: live SSL; its verify param is owned by it; bytes are copied.
        let ok = unsafe {
            let param = sys::SSL_get0_param(self.raw());
            sys::X509_VERIFY_PARAM_set1_ip(param, bytes.as_ptr(), bytes.len()) == 1
        };
        if !ok {
            return Err(format!("cannot verify IP {ip}: {}", drain_errors()));
        }
        self.expected_name = Some(ip.to_string());
        Ok(())
    }

    /// File this connection's sessions under `key` in `cache`, and offer the
    /// session already there (if any) for resumption.
    pub(crate) fn use_session_cache(&mut self, cache: &SessionCache, key: &str) {
        let Ok(c) = CString::new(key) else { return };
        // SAFETY: live SSL; the ex-data points at `c`, which we keep (moving
        // a CString does not move its heap buffer) until we are dropped.
        unsafe {
            sys::SSL_set_ex_data(self.raw(), super::session::key_index(), c.as_ptr() as *mut _);
            cache.resume(self.raw(), key);
        }
        self.session_key = Some(c);
    }

    fn outcome<T>(&self, ret: libc::c_int, value: T) -> Outcome<T> {
        if ret > 0 {
            return Outcome::Done(value);
        }
        // SAFETY: live SSL; `ret` is the return of the call just made.
        let code = unsafe { sys::SSL_get_error(self.raw(), ret) };
        match code {
            sys::SSL_ERROR_WANT_READ | sys::SSL_ERROR_WANT_WRITE => {
                // Nothing failed; nothing should be queued, but never let
                // a stray entry leak into the next call.
                clear_errors();
                Outcome::WantRead
            }
            sys::SSL_ERROR_ZERO_RETURN => Outcome::Closed,
            _ => {
                let reasons = drain_reasons();
                let verify = self.verify_error();
                let mut message = text(&reasons);
                if let Some(v) = &verify {
                    message = if message.is_empty() { v.message.clone() } else { format!("{message} ({})", v.message) };
                }
                if message.is_empty() {
                    message = "TLS failure".into();
                }
                let typed = OpensslError { reasons, verify, text: message.clone() };
                Outcome::Failed { code, message, cause: Some(typed.into()) }
            }
        }
    }

    /// Advance the handshake as far as the ciphertext fed so far allows,
    /// stopping where OpenSSL flushes a complete flight ([`Progress::Flight`]).
    pub(crate) fn handshake(&mut self) -> Outcome<Progress> {
        clear_errors();
        // SAFETY: live SSL with BIOs attached.
        let (ret, refused) = self.bio(self.wbio).refusing_flushes(|| unsafe { sys::SSL_do_handshake(self.raw()) });
        // A refused flush leaves the state machine waiting to retry it, with
        // nothing queued; a failure queues its reason, and wins.
        // SAFETY: reads the calling thread's error queue.
        if ret <= 0 && refused && unsafe { super::ERR_peek_error() } == 0 {
            return Outcome::Done(Progress::Flight);
        }
        if ret == 1 && !self.is_server() {
            // SAFETY: a live client SSL of one of our contexts, handshake done.
            unsafe { super::ctx::refresh_resumed_session(self.raw()) };
        }
        // SAFETY: live SSL; `ret` is the return of the call just made.
        if ret <= 0 && unsafe { sys::SSL_get_error(self.raw(), ret) } == sys::SSL_ERROR_WANT_CLIENT_HELLO_CB {
            clear_errors();
            return Outcome::Done(Progress::Certificate);
        }
        self.outcome(ret, Progress::Finished)
    }

    /// Decrypt into `buf`.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Outcome<usize> {
        let mut n = 0;
        clear_errors();
        // SAFETY: `buf` is writable for its length; `n` receives the count.
        let ret = unsafe { sys::SSL_read_ex(self.raw(), buf.as_mut_ptr().cast(), buf.len(), &mut n) };
        self.outcome(ret, n)
    }

    /// Encrypt `buf` into records queued for the peer.
    pub(crate) fn write(&mut self, buf: &[u8]) -> Outcome<usize> {
        let mut n = 0;
        clear_errors();
        // SAFETY: `buf` is readable for its length; `n` receives the count.
        let ret = unsafe { sys::SSL_write_ex(self.raw(), buf.as_ptr().cast(), buf.len(), &mut n) };
        self.outcome(ret, n)
    }

    /// Queue a close_notify alert for the peer.
    pub(crate) fn shutdown(&mut self) -> Outcome<()> {
        clear_errors();
        // SAFETY: live SSL. 0 means "sent, peer's not yet seen", which is
        // all a one-way close needs; 1 means both directions are closed.
        let ret = unsafe { sys::SSL_shutdown(self.raw()) };
        if ret >= 0 { Outcome::Done(()) } else { self.outcome(ret, ()) }
    }

    /// A BIO this `SSL` owns, lent for as long as `self` is borrowed.
    fn bio(&self, ptr: NonNull<sys::BIO>) -> BioRef<'_> {
        // SAFETY: the SSL owns both BIOs and frees them only when dropped,
        // which the borrow of `self` rules out; `Ssl` is used by one thread
        // at a time, so nobody else touches the BIO meanwhile.
        unsafe { BioRef::new(ptr) }
    }

    /// Hand ciphertext from the peer to OpenSSL.
    pub(crate) fn feed(&mut self, data: &[u8]) {
        self.bio(self.rbio).write(data);
    }

    /// Hand `out` to the write BIO, which must be empty, so that OpenSSL
    /// appends its next output to it in place; [`take_output`] gives it
    /// back.
    ///
    /// [`take_output`]: Ssl::take_output
    pub(crate) fn lend_output(&mut self, out: &mut Vec<u8>) {
        self.bio(self.wbio).lend(out);
    }

    /// Move ciphertext OpenSSL produced (records, alerts) into `out`.
    pub(crate) fn take_output(&mut self, out: &mut Vec<u8>) {
        self.bio(self.wbio).drain_into(out);
    }

    /// Whether this is the server end.
    fn is_server(&self) -> bool {
        // SAFETY: live SSL.
        unsafe { sys::SSL_is_server(self.raw()) == 1 }
    }

    /// Whether the handshake has finished.
    pub(crate) fn is_handshake_done(&self) -> bool {
        // SAFETY: live SSL.
        unsafe { sys::SSL_is_init_finished(self.raw()) == 1 }
    }

    /// The negotiated protocol version (`TLS1_2_VERSION`, ...).
    pub(crate) fn version(&self) -> libc::c_int {
        // SAFETY: live SSL.
        unsafe { sys::SSL_version(self.raw()) }
    }

    /// The negotiated cipher suite's OpenSSL name.
    pub(crate) fn cipher(&self) -> Option<String> {
        // SAFETY: live SSL; the cipher and its name are static.
        unsafe {
            let c = sys::SSL_get_current_cipher(self.raw());
            if c.is_null() {
                return None;
            }
            Some(CStr::from_ptr(sys::SSL_CIPHER_get_name(c)).to_string_lossy().into_owned())
        }
    }

    /// The protocol ALPN selected, if any.
    pub(crate) fn alpn(&self) -> Option<String> {
        let mut data: *const libc::c_uchar = std::ptr::null();
        let mut len: libc::c_uint = 0;
        // SAFETY: live SSL; the result points into the SSL's own memory and
        // is copied before we return.
        unsafe {
            sys::SSL_get0_alpn_selected(self.raw(), &mut data, &mut len);
            if data.is_null() || len == 0 {
                return None;
            }
            let bytes = std::slice::from_raw_parts(data, len as usize);
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
    }

    /// The SNI name: sent (client) or received (server).
    pub(crate) fn server_name(&self) -> Option<String> {
        // SAFETY: live SSL; the name is owned by the SSL and copied.
        unsafe {
            let p = sys::SSL_get_servername(self.raw(), sys::TLSEXT_NAMETYPE_host_name);
            (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
        }
    }

    /// The peer's certificates, DER encoded, leaf first.
    pub(crate) fn peer_certificates(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        // SAFETY: live SSL. get1 returns a reference we free; the chain stack
        // and its entries are owned by the SSL and only read here.
        unsafe {
            let leaf = sys::SSL_get1_peer_certificate(self.raw());
            if leaf.is_null() {
                return out;
            }
            let leaf_der = der(leaf);
            sys::X509_free(leaf);
            out.push(leaf_der);
            let chain = sys::SSL_get_peer_cert_chain(self.raw());
            if !chain.is_null() {
                let stack = chain.cast::<sys::OPENSSL_STACK>();
                for i in 0..sys::OPENSSL_sk_num(stack) {
                    let cert = sys::OPENSSL_sk_value(stack, i).cast::<sys::X509>();
                    if !cert.is_null() {
                        let d = der(cert);
                        // The client's chain starts with the leaf; the server's does not.
                        if d != out[0] {
                            out.push(d);
                        }
                    }
                }
            }
        }
        out
    }

    /// The key-exchange group negotiated (`X25519`, `secp256r1`,
    /// `X25519MLKEM768`), once the handshake has chosen one.
    pub(crate) fn group(&self) -> Option<String> {
        /// `SSL_CTRL_GET_NEGOTIATED_GROUP`, behind a macro in OpenSSL 3.
        const GET_NEGOTIATED_GROUP: libc::c_int = 134;
        // SAFETY: live SSL; this ctrl takes no pointer and returns a group
        // id, whose name is static (or null when unknown) and copied.
        unsafe {
            let id = sys::SSL_ctrl(self.raw(), GET_NEGOTIATED_GROUP, 0, std::ptr::null_mut());
            if id <= 0 {
                return None;
            }
            let name = super::SSL_group_to_name(self.raw(), id as libc::c_int);
            (!name.is_null()).then(|| CStr::from_ptr(name).to_string_lossy().into_owned())
        }
    }

    /// Keying material exported from the session's master secret (RFC 5705,
    /// RFC 8446 §7.5); `context` `None` is "no context", distinct from an
    /// empty one.
    pub(crate) fn export_keying_material(
        &self,
        label: &str,
        context: Option<&[u8]>,
        len: usize,
    ) -> Result<Vec<u8>, String> {
        let mut out = vec![0u8; len];
        let (ctx_ptr, ctx_len, use_ctx) = match context {
            Some(c) => (c.as_ptr(), c.len(), 1),
            None => (std::ptr::null(), 0, 0),
        };
        clear_errors();
        // SAFETY: live SSL; `out` is writable for `len` bytes; the label and
        // context are read for their lengths during the call only.
        let ok = unsafe {
            sys::SSL_export_keying_material(
                self.raw(),
                out.as_mut_ptr(),
                len,
                label.as_ptr().cast(),
                label.len(),
                ctx_ptr,
                ctx_len,
                use_ctx,
            )
        } == 1;
        if ok {
            Ok(out)
        } else {
            let queue = drain_errors();
            Err(if queue.is_empty() { "OpenSSL cannot export keying material".into() } else { queue })
        }
    }

    /// Whether the handshake resumed an earlier session.
    pub(crate) fn session_reused(&self) -> bool {
        // SAFETY: live SSL.
        unsafe { sys::SSL_session_reused(self.raw()) == 1 }
    }

    /// Why certificate verification failed, if it did: OpenSSL's code and
    /// text, and for a name mismatch both names, as Go says them.
    pub(crate) fn verify_error(&self) -> Option<VerifyError> {
        // SAFETY: live SSL; the error string is static.
        let (code, text) = unsafe {
            let r = sys::SSL_get_verify_result(self.raw());
            if r == sys::X509_V_OK as libc::c_long {
                return None;
            }
            (r, CStr::from_ptr(sys::X509_verify_cert_error_string(r)).to_string_lossy().into_owned())
        };
        let code = i32::try_from(code).unwrap_or(i32::MAX);
        let message = match (code, self.peer_leaf(), &self.expected_name) {
            (VerifyError::HOSTNAME_MISMATCH | VerifyError::IP_ADDRESS_MISMATCH, Some(leaf), Some(wanted)) => {
                let (dns, ips) = leaf.alt_names();
                let valid: Vec<String> = if code == VerifyError::HOSTNAME_MISMATCH {
                    dns
                } else {
                    ips.iter().map(IpAddr::to_string).collect()
                };
                if valid.is_empty() {
                    format!("{text}: certificate is not valid for any names, but wanted to match {wanted}")
                } else {
                    format!("{text}: certificate is valid for {}, not {wanted}", valid.join(", "))
                }
            }
            _ => text,
        };
        Some(VerifyError { code, message })
    }

    /// The peer's leaf certificate, also when verification refused it (the
    /// session then has the chain but no peer yet).
    fn peer_leaf(&self) -> Option<Cert> {
        // SAFETY: live SSL; get1 returns a reference we own; the chain's
        // entries are owned by the SSL and we take a reference of our own.
        unsafe {
            let leaf = sys::SSL_get1_peer_certificate(self.raw());
            if let Some(leaf) = NonNull::new(leaf) {
                return Some(Cert::from_owned(leaf));
            }
            let chain = sys::SSL_get_peer_cert_chain(self.raw()).cast::<sys::OPENSSL_STACK>();
            if chain.is_null() || sys::OPENSSL_sk_num(chain) == 0 {
                return None;
            }
            let first = NonNull::new(sys::OPENSSL_sk_value(chain, 0).cast::<sys::X509>())?;
            sys::X509_up_ref(first.as_ptr());
            Some(Cert::from_owned(first))
        }
    }
}

impl Drop for Ssl {
    fn drop(&mut self) {
        // SAFETY: we own the SSL (and through it both BIOs); freed once.
        unsafe { sys::SSL_free(self.ptr.as_ptr()) };
        if !self.hello.is_null() {
            // SAFETY: from Box::into_raw in `new`; the SSL that pointed at
            // it is gone; freed once.
            drop(unsafe { Box::from_raw(self.hello) });
        }
    }
}
