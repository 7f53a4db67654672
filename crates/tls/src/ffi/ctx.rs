//! `SslCtx`: an owned `SSL_CTX` and the Rust data its callbacks read.

use std::ffi::{CStr, CString, c_void};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::{Arc, OnceLock};

use openssl_sys as sys;
use parking_lot::Mutex;

use super::err::{clear_errors, drain_errors};
use super::x509::{Cert, KeyPair};
use super::{SessionCache, TicketKeys};

/// How a server treats client certificates (Go's `ClientAuthType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VerifyMode {
    /// Do not ask for a certificate (clients: do not verify the server).
    Off,
    /// Ask, accept any certificate or none, verify nothing.
    RequestAny,
    /// Require a certificate, verify nothing.
    RequireAny,
    /// Verify a certificate if one is sent (servers), or always (clients).
    VerifyIfGiven,
    /// Require a certificate and verify it.
    RequireAndVerify,
}

/// What the context's callbacks need, owned by the `SslCtx` and reached from
/// C through the context's ex-data slot.
#[derive(Default)]
struct CallbackData {
    /// Further certificate/key pairs of a server, chosen by SNI; the
    /// context's own pair is the first and the fallback.
    key_pairs: Vec<KeyPair>,
    /// Server ALPN preferences, in wire format.
    alpn: Vec<u8>,
    keylog: Option<Mutex<File>>,
    sessions: Option<Arc<SessionCache>>,
    /// Servers: a resolver chooses each connection's certificate.
    resolves: bool,
    /// Servers: the session ticket keys.
    tickets: Option<Arc<TicketKeys>>,
}

/// An owned `SSL_CTX`, configured once and then shared by every connection
/// of its `Config` and role.
pub(crate) struct SslCtx {
    ptr: NonNull<sys::SSL_CTX>,
    data: *mut CallbackData,
}

// SAFETY: an SSL_CTX is safe to share between threads once configured, and
// every setter here takes `&mut self`, so configuration happens before the
// context is shared. The callback data is only read after that.
unsafe impl Send for SslCtx {}
// SAFETY: as above.
unsafe impl Sync for SslCtx {}

// libssl's, not declared by openssl-sys.
unsafe extern "C" {
    fn SSL_CTX_set_default_passwd_cb(ctx: *mut sys::SSL_CTX, cb: sys::pem_password_cb);
    pub(super) fn SSL_certs_clear(s: *mut sys::SSL);
    fn SSL_CTX_set_timeout(ctx: *mut sys::SSL_CTX, t: libc::c_long) -> libc::c_long;
}

/// OpenSSL's password callback: reseau parses keys itself (see
/// `x509::parse_key`), so a context never needs a password; answering
/// "none" makes sure OpenSSL never asks on the terminal instead.
unsafe extern "C" fn no_password(
    _buf: *mut libc::c_char,
    _size: libc::c_int,
    _rwflag: libc::c_int,
    _user: *mut c_void,
) -> libc::c_int {
    0
}

fn ctx_data_index() -> libc::c_int {
    static INDEX: OnceLock<libc::c_int> = OnceLock::new();
    // SAFETY: registers an ex-data index with no callbacks; done once.
    *INDEX.get_or_init(|| unsafe { sys::SSL_CTX_get_ex_new_index(0, std::ptr::null_mut(), None, None, None) })
}

fn c_path(path: &Path) -> Result<CString, String> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("{}: path contains a NUL byte", path.display()))
}

/// `Err` with the error queue's text, or `fallback` if it is empty.
fn check(ok: bool, fallback: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        return Ok(());
    }
    let queue = drain_errors();
    Err(if queue.is_empty() { fallback() } else { format!("{}: {queue}", fallback()) })
}

/// The TLS 1.2 suites on offer, as Go's defaults: ECDHE key exchange with
/// an AEAD (AES-GCM, ChaCha20-Poly1305), then the ECDHE CBC-SHA1 suites Go
/// keeps for old peers. OpenSSL's own default adds CBC-SHA256/384 suites,
/// which testssl.sh flags for LUCKY13. TLS 1.3 suites are set apart.
pub(crate) const TLS12_CIPHERS: &CStr = c"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:\
ECDHE-RSA-AES256-SHA";

/// The TLS 1.3 suites on offer, in Go's order: AES-128-GCM first where
/// the CPU has AES instructions (its SHA-256 transcript and key schedule
/// are also cheaper than AES-256-GCM's SHA-384), ChaCha20-Poly1305 first
/// where it has not. OpenSSL's own default puts AES-256-GCM first.
pub(crate) fn tls13_ciphers() -> &'static CStr {
    if aes_in_hardware() {
        c"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    } else {
        c"TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"
    }
}

/// Whether AES-GCM runs in hardware here, by Go's test: AES and carry-less
/// multiplication instructions.
fn aes_in_hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes") && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

impl SslCtx {
    /// A new client or server context with reseau's fixed security
    /// settings: no renegotiation, no compression, TLS 1.2 at the least,
    /// and Go's cipher suites in Go's order ([`TLS12_CIPHERS`],
    /// [`tls13_ciphers`]). A server prefers its own order, except that
    /// a client putting ChaCha20-Poly1305 first (one without AES
    /// instructions) gets it, as with Go's server.
    pub(crate) fn new(server: bool) -> Result<SslCtx, String> {
        super::init();
        clear_errors();
        // SAFETY: the method tables are static.
        let method = unsafe { if server { sys::TLS_server_method() } else { sys::TLS_client_method() } };
        // SAFETY: `method` is valid; the result is owned by the SslCtx.
        let ptr = NonNull::new(unsafe { sys::SSL_CTX_new(method) }).ok_or_else(drain_errors)?;
        let data = Box::into_raw(Box::<CallbackData>::default());
        let ctx = SslCtx { ptr, data };
        // SAFETY: `ctx.ptr` is live; the index is valid; `data` lives as
        // long as the context (freed in Drop after SSL_CTX_free).
        unsafe {
            sys::SSL_CTX_set_ex_data(ctx.ptr.as_ptr(), ctx_data_index(), data.cast());
            sys::SSL_CTX_set_options(
                ctx.ptr.as_ptr(),
                (sys::SSL_OP_NO_RENEGOTIATION
                    | sys::SSL_OP_NO_COMPRESSION
                    | sys::SSL_OP_CIPHER_SERVER_PREFERENCE
                    | sys::SSL_OP_PRIORITIZE_CHACHA) as _,
            );
            sys::SSL_CTX_set_mode(ctx.ptr.as_ptr(), sys::SSL_MODE_RELEASE_BUFFERS);
            // Never a prompt on the terminal for an encrypted key.
            SSL_CTX_set_default_passwd_cb(ctx.ptr.as_ptr(), Some(no_password));
        }
        // SAFETY: live context; a NUL-terminated list.
        if unsafe { sys::SSL_CTX_set_cipher_list(ctx.ptr.as_ptr(), TLS12_CIPHERS.as_ptr()) } != 1 {
            return Err(drain_errors());
        }
        // SAFETY: live context; a NUL-terminated list.
        if unsafe { sys::SSL_CTX_set_ciphersuites(ctx.ptr.as_ptr(), tls13_ciphers().as_ptr()) } != 1 {
            return Err(drain_errors());
        }
        Ok(ctx)
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::SSL_CTX {
        self.ptr.as_ptr()
    }

    fn data(&mut self) -> &mut CallbackData {
        // SAFETY: `data` is a live Box owned by self; `&mut self` makes
        // this the only access.
        unsafe { &mut *self.data }
    }

    /// Protocol versions as `TLS1_2_VERSION`-style numbers; `None`: no cap.
    pub(crate) fn set_versions(&mut self, min: libc::c_int, max: Option<libc::c_int>) -> Result<(), String> {
        clear_errors();
        // SAFETY: live context; plain integer arguments.
        let ok = unsafe {
            sys::SSL_CTX_set_min_proto_version(self.as_ptr(), min as _) == 1
                && sys::SSL_CTX_set_max_proto_version(self.as_ptr(), max.unwrap_or(0) as _) == 1
        };
        check(ok, || "cannot set protocol versions".into())
    }

    /// Trust the CA certificates in `path`: a PEM file or a hashed directory.
    pub(crate) fn load_verify_locations(&mut self, path: &Path) -> Result<(), String> {
        let c = c_path(path)?;
        let (file, dir) = if path.is_dir() { (std::ptr::null(), c.as_ptr()) } else { (c.as_ptr(), std::ptr::null()) };
        clear_errors();
        // SAFETY: live context; valid C strings or null.
        let ok = unsafe { sys::SSL_CTX_load_verify_locations(self.as_ptr(), file, dir) } == 1;
        check(ok, || format!("cannot load CA certificates from {}", path.display()))
    }

    /// Use `pair`: the leaf, the rest of the chain, and the key.
    pub(crate) fn use_key_pair(&mut self, pair: &KeyPair) -> Result<(), String> {
        clear_errors();
        // SAFETY: live context and certificates; OpenSSL takes references of
        // its own (use_* up-ref, CHAIN_CERT with larg 1 is add1).
        let ok = unsafe {
            sys::SSL_CTX_use_certificate(self.as_ptr(), pair.leaf().as_ptr()) == 1
                && sys::SSL_CTX_use_PrivateKey(self.as_ptr(), pair.key.as_ptr()) == 1
                && pair.chain[1..]
                    .iter()
                    .all(|c| sys::SSL_CTX_ctrl(self.as_ptr(), sys::SSL_CTRL_CHAIN_CERT, 1, c.as_ptr().cast()) == 1)
        };
        check(ok, || "cannot use the certificate and key".into())
    }

    /// Choose among `pairs` by the client's SNI: the first whose leaf is
    /// valid for the name; unknown names (and no name) get the context's
    /// own pair.
    pub(crate) fn select_by_sni(&mut self, pairs: Vec<KeyPair>) {
        self.data().key_pairs = pairs;
        // SAFETY: live context; plain function callback.
        unsafe { sys::SSL_CTX_set_tlsext_servername_callback__fixed_rust(self.as_ptr(), Some(select_certificate)) };
    }

    /// Let a resolver outside OpenSSL choose each connection's certificate
    /// (see `hello.rs`), and staple the chosen key's OCSP response.
    pub(crate) fn resolve_certificates(&mut self) {
        self.data().resolves = true;
        // SAFETY: live context; plain function callbacks, no argument.
        unsafe {
            sys::SSL_CTX_set_client_hello_cb(self.as_ptr(), Some(super::hello::client_hello), std::ptr::null_mut());
            sys::SSL_CTX_set_tlsext_status_cb(self.as_ptr(), Some(super::hello::staple));
        }
    }

    /// Whether connections of this context ask a resolver for their
    /// certificate.
    pub(crate) fn resolves(&self) -> bool {
        // SAFETY: `data` is a live Box owned by self, read only.
        unsafe { (*self.data).resolves }
    }

    /// Trust these CA certificates.
    pub(crate) fn trust(&mut self, cas: &[Cert]) -> Result<(), String> {
        clear_errors();
        // SAFETY: live context; its store takes references of its own.
        let ok = unsafe {
            let store = sys::SSL_CTX_get_cert_store(self.as_ptr());
            cas.iter().all(|c| sys::X509_STORE_add_cert(store, c.as_ptr()) == 1)
        };
        check(ok, || "cannot add the CA certificates".into())
    }

    /// Send these certificates' subject names as the acceptable client CAs.
    pub(crate) fn set_client_ca_names(&mut self, cas: &[Cert]) -> Result<(), String> {
        clear_errors();
        // SAFETY: live context; the names are copied.
        let ok = cas.iter().all(|c| unsafe { sys::SSL_CTX_add_client_CA(self.as_ptr(), c.as_ptr()) } == 1);
        check(ok, || "cannot set the client CA names".into())
    }

    /// A server without session resumption (Go's `SessionTicketsDisabled`):
    /// no TLS 1.3 tickets, no TLS 1.2 tickets, no session-ID cache.
    pub(crate) fn disable_resumption(&mut self) {
        // SAFETY: live context; plain integer arguments.
        unsafe {
            sys::SSL_CTX_set_options(self.as_ptr(), sys::SSL_OP_NO_TICKET as _);
            sys::SSL_CTX_set_num_tickets(self.as_ptr(), 0);
            sys::SSL_CTX_set_session_cache_mode(self.as_ptr(), sys::SSL_SESS_CACHE_OFF);
        }
    }

    /// Seal and open session tickets with `keys` (see `tickets.rs`), and
    /// honour a session for as long as its key lives (7 days), as Go does.
    pub(crate) fn set_ticket_keys(&mut self, keys: Arc<TicketKeys>) {
        /// `SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB`.
        const SET_TICKET_KEY_CB: libc::c_int = 72;
        type TicketKeyCb = unsafe extern "C" fn(
            *mut sys::SSL,
            *mut libc::c_uchar,
            *mut libc::c_uchar,
            *mut sys::EVP_CIPHER_CTX,
            *mut sys::HMAC_CTX,
            libc::c_int,
        ) -> libc::c_int;
        self.data().tickets = Some(keys);
        let cb: TicketKeyCb = ticket_key;
        // SAFETY: live context; OpenSSL calls the callback back with the
        // signature above (`SSL_CTX_set_tlsext_ticket_key_cb` is this ctrl);
        // it reaches the keys through the context's ex-data.
        unsafe {
            let cb = std::mem::transmute::<TicketKeyCb, unsafe extern "C" fn()>(cb);
            sys::SSL_CTX_callback_ctrl__fixed_rust(self.as_ptr(), SET_TICKET_KEY_CB, Some(cb));
            SSL_CTX_set_timeout(self.as_ptr(), super::tickets::LIFETIME.as_secs() as libc::c_long);
        }
    }

    /// How many TLS 1.3 session tickets a server sends after each
    /// handshake (OpenSSL's default is two).
    pub(crate) fn set_num_tickets(&mut self, n: usize) {
        // SAFETY: live context; a plain integer argument, which cannot fail.
        unsafe { sys::SSL_CTX_set_num_tickets(self.as_ptr(), n) };
    }

    /// The key-exchange groups, in preference order (`X25519:P-256`).
    pub(crate) fn set_groups(&mut self, list: &CStr) -> Result<(), String> {
        clear_errors();
        // SAFETY: live context; a NUL-terminated list, copied.
        let ok = unsafe { sys::SSL_CTX_set1_groups_list(self.as_ptr(), list.as_ptr()) } == 1;
        check(ok, || "unknown group".into())
    }

    /// The TLS 1.2 cipher list, OpenSSL's syntax.
    pub(crate) fn set_cipher_list(&mut self, list: &CStr) -> Result<(), String> {
        clear_errors();
        // SAFETY: live context; a NUL-terminated list, copied.
        let ok = unsafe { sys::SSL_CTX_set_cipher_list(self.as_ptr(), list.as_ptr()) } == 1;
        check(ok, || "no such TLS 1.2 cipher suite".into())
    }

    /// The TLS 1.3 cipher suites.
    pub(crate) fn set_ciphersuites(&mut self, list: &CStr) -> Result<(), String> {
        clear_errors();
        // SAFETY: live context; a NUL-terminated list, copied.
        let ok = unsafe { sys::SSL_CTX_set_ciphersuites(self.as_ptr(), list.as_ptr()) } == 1;
        check(ok, || "no such TLS 1.3 cipher suite".into())
    }

    pub(crate) fn set_verify(&mut self, mode: VerifyMode) {
        let (flags, accept_any) = match mode {
            VerifyMode::Off => (sys::SSL_VERIFY_NONE, false),
            VerifyMode::RequestAny => (sys::SSL_VERIFY_PEER, true),
            VerifyMode::RequireAny => (sys::SSL_VERIFY_PEER | sys::SSL_VERIFY_FAIL_IF_NO_PEER_CERT, true),
            VerifyMode::VerifyIfGiven => (sys::SSL_VERIFY_PEER, false),
            VerifyMode::RequireAndVerify => (sys::SSL_VERIFY_PEER | sys::SSL_VERIFY_FAIL_IF_NO_PEER_CERT, false),
        };
        let cb: Option<extern "C" fn(libc::c_int, *mut sys::X509_STORE_CTX) -> libc::c_int> =
            if accept_any { Some(accept_any_certificate) } else { None };
        // SAFETY: live context; the callback is a plain function.
        unsafe { sys::SSL_CTX_set_verify(self.as_ptr(), flags, cb) };
    }

    /// Offer these protocols (client), in wire format.
    pub(crate) fn set_alpn_protos(&mut self, wire: &[u8]) -> Result<(), String> {
        clear_errors();
        // SAFETY: live context; `wire` is read during the call only.
        // (This one function returns 0 on success.)
        let ok = unsafe { sys::SSL_CTX_set_alpn_protos(self.as_ptr(), wire.as_ptr(), wire.len() as _) } == 0;
        check(ok, || "cannot set ALPN protocols".into())
    }

    /// Choose among the client's protocols by these preferences (server).
    pub(crate) fn set_alpn_select(&mut self, wire: Vec<u8>) {
        self.data().alpn = wire;
        // SAFETY: live context; the callback reads the preferences through
        // the context's ex-data, which outlives every connection.
        unsafe { sys::SSL_CTX_set_alpn_select_cb__fixed_rust(self.as_ptr(), Some(select_alpn), std::ptr::null_mut()) };
    }

    /// A misbehaving server, for tests: always choose the first of `wire`,
    /// whatever the client offered.
    #[cfg(test)]
    pub(crate) fn choose_alpn_regardless(&mut self, wire: Vec<u8>) {
        unsafe extern "C" fn regardless(
            ssl: *mut sys::SSL,
            out: *mut *const libc::c_uchar,
            outlen: *mut libc::c_uchar,
            _inbuf: *const libc::c_uchar,
            _inlen: libc::c_uint,
            _arg: *mut c_void,
        ) -> libc::c_int {
            // SAFETY: a live SSL of one of our contexts; the list outlives
            // the handshake; `out`/`outlen` are OpenSSL's out-parameters.
            unsafe {
                let Some(data) = callback_data(ssl) else { return sys::SSL_TLSEXT_ERR_NOACK };
                *out = data.alpn.as_ptr().add(1);
                *outlen = data.alpn[0];
            }
            sys::SSL_TLSEXT_ERR_OK
        }
        self.data().alpn = wire;
        // SAFETY: live context; plain function callback.
        unsafe { sys::SSL_CTX_set_alpn_select_cb__fixed_rust(self.as_ptr(), Some(regardless), std::ptr::null_mut()) };
    }

    /// Append NSS key-log lines for every connection to `file`.
    pub(crate) fn set_keylog(&mut self, file: File) {
        self.data().keylog = Some(Mutex::new(file));
        // SAFETY: live context; plain function callback.
        unsafe { sys::SSL_CTX_set_keylog_callback(self.as_ptr(), Some(write_keylog)) };
    }

    /// Keep client sessions in `cache` for resumption.
    pub(crate) fn set_client_session_cache(&mut self, cache: Arc<SessionCache>) {
        self.data().sessions = Some(cache);
        // SAFETY: live context; plain function callback.
        unsafe {
            sys::SSL_CTX_set_session_cache_mode(
                self.as_ptr(),
                sys::SSL_SESS_CACHE_CLIENT | sys::SSL_SESS_CACHE_NO_INTERNAL_STORE,
            );
            sys::SSL_CTX_sess_set_new_cb(self.as_ptr(), Some(new_session));
        }
    }

    /// Let servers resume sessions (TLS 1.2 session IDs need a context id).
    pub(crate) fn set_session_id_context(&mut self, id: &[u8]) {
        // SAFETY: live context; `id` (at most 32 bytes) is copied.
        unsafe { sys::SSL_CTX_set_session_id_context(self.as_ptr(), id.as_ptr(), id.len().min(32) as _) };
    }
}

impl Drop for SslCtx {
    fn drop(&mut self) {
        // SAFETY: we own one reference to the context and drop it once; no
        // SSL outlives us (each holds an Arc to this SslCtx), so the callback
        // data is unreachable once the context is freed.
        unsafe {
            sys::SSL_CTX_free(self.ptr.as_ptr());
            drop(Box::from_raw(self.data));
        }
    }
}

/// The callback data of the context `ssl` belongs to.
///
/// # Safety
/// `ssl` must be a live SSL created from an `SslCtx`.
unsafe fn callback_data<'a>(ssl: *const sys::SSL) -> Option<&'a CallbackData> {
    // SAFETY: per the contract, the context and its ex-data are live.
    unsafe {
        let ctx = sys::SSL_get_SSL_CTX(ssl);
        let data = sys::SSL_CTX_get_ex_data(ctx, ctx_data_index()).cast::<CallbackData>();
        data.as_ref()
    }
}

unsafe extern "C" fn select_certificate(
    ssl: *mut sys::SSL,
    _alert: *mut libc::c_int,
    _arg: *mut c_void,
) -> libc::c_int {
    // SAFETY: OpenSSL calls this with a live SSL from one of our contexts;
    // the name is owned by the SSL and read during the call only.
    unsafe {
        let Some(data) = callback_data(ssl) else { return sys::SSL_TLSEXT_ERR_OK };
        let name = sys::SSL_get_servername(ssl, sys::TLSEXT_NAMETYPE_host_name);
        if name.is_null() {
            return sys::SSL_TLSEXT_ERR_OK;
        }
        // A certificate the resolver chose stays.
        if super::hello::hello_of(ssl).is_some_and(|h| h.chose()) {
            return sys::SSL_TLSEXT_ERR_OK;
        }
        let name = CStr::from_ptr(name).to_bytes();
        // The first pair valid for the name, as Go's getCertificate picks;
        // the context's own pair is the list's first, already in place.
        let chosen = data.key_pairs.iter().position(|p| p.leaf().matches_host(name));
        if let Some(pair) = chosen.filter(|&i| i > 0).map(|i| &data.key_pairs[i])
            && !super::hello::use_pair(ssl, pair)
        {
            return sys::SSL_TLSEXT_ERR_ALERT_FATAL;
        }
    }
    sys::SSL_TLSEXT_ERR_OK
}

extern "C" fn accept_any_certificate(_preverify_ok: libc::c_int, _store: *mut sys::X509_STORE_CTX) -> libc::c_int {
    // RequestClientCert and RequireAnyClientCert take any certificate, as Go
    // does: the application inspects it in ConnectionState if it cares.
    1
}

unsafe extern "C" fn select_alpn(
    ssl: *mut sys::SSL,
    out: *mut *const libc::c_uchar,
    outlen: *mut libc::c_uchar,
    inbuf: *const libc::c_uchar,
    inlen: libc::c_uint,
    _arg: *mut c_void,
) -> libc::c_int {
    // SAFETY: OpenSSL calls this with a live SSL from one of our contexts.
    let Some(data) = (unsafe { callback_data(ssl) }) else { return sys::SSL_TLSEXT_ERR_NOACK };
    let mut chosen: *mut libc::c_uchar = std::ptr::null_mut();
    let mut chosen_len: libc::c_uchar = 0;
    // SAFETY: both lists are valid wire-format buffers for the call; the
    // result points into one of them, which outlive the handshake.
    let rc = unsafe {
        sys::SSL_select_next_proto(&mut chosen, &mut chosen_len, data.alpn.as_ptr(), data.alpn.len() as _, inbuf, inlen)
    };
    if rc != sys::OPENSSL_NPN_NEGOTIATED {
        // No overlap: fail with no_application_protocol, as Go does, but
        // for Go's one exception: an `http/1.1` client reaching an `h2`
        // server goes on without ALPN.
        // SAFETY: OpenSSL hands us the client's list, valid for the call.
        let offered = unsafe { std::slice::from_raw_parts(inbuf, inlen as usize) };
        return if alpn_contains(&data.alpn, b"h2") && alpn_contains(offered, b"http/1.1") {
            sys::SSL_TLSEXT_ERR_NOACK
        } else {
            // OpenSSL sends the no_application_protocol alert for this.
            sys::SSL_TLSEXT_ERR_ALERT_FATAL
        };
    }
    // SAFETY: `out`/`outlen` are OpenSSL's out-parameters.
    unsafe {
        *out = chosen;
        *outlen = chosen_len;
    }
    sys::SSL_TLSEXT_ERR_OK
}

/// Whether the wire-format ALPN list `list` holds `proto`.
pub(crate) fn alpn_contains(list: &[u8], proto: &[u8]) -> bool {
    let mut rest = list;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        if &tail[..len] == proto {
            return true;
        }
        rest = &tail[len..];
    }
    false
}

unsafe extern "C" fn write_keylog(ssl: *const sys::SSL, line: *const libc::c_char) {
    // SAFETY: OpenSSL calls this with a live SSL and a NUL-terminated line.
    let (data, line) = unsafe { (callback_data(ssl), std::ffi::CStr::from_ptr(line)) };
    if let Some(file) = data.and_then(|d| d.keylog.as_ref()) {
        let mut f = file.lock();
        // Best effort: a full disk must not break the connection.
        let _ = f.write_all(line.to_bytes()).and_then(|()| f.write_all(b"\n"));
    }
}

unsafe extern "C" fn ticket_key(
    ssl: *mut sys::SSL,
    name: *mut libc::c_uchar,
    iv: *mut libc::c_uchar,
    cipher: *mut sys::EVP_CIPHER_CTX,
    hmac: *mut sys::HMAC_CTX,
    enc: libc::c_int,
) -> libc::c_int {
    // SAFETY: OpenSSL calls this with a live SSL from one of our contexts.
    let Some(keys) = (unsafe { callback_data(ssl) }).and_then(|d| d.tickets.as_ref()) else { return -1 };
    // SAFETY: a live SSL; the version is known once the ClientHello is read.
    let tls13 = unsafe { sys::SSL_version(ssl) } >= sys::TLS1_3_VERSION;
    // SAFETY: the callback's own arguments, live for the call.
    unsafe { keys.callback(name, iv, cipher, hmac, enc, tls13) }
}

/// After a client's resumed TLS 1.2 handshake, keep the session again: the
/// server may have renewed its ticket (a rotation), which OpenSSL keeps on
/// the connection without calling the new-session callback, so that the
/// client would go on offering the old ticket until its key retires. (TLS
/// 1.3 tickets arrive after the handshake and reach the callback.)
///
/// # Safety
/// `ssl` is a live client SSL of one of our contexts, its handshake done.
pub(super) unsafe fn refresh_resumed_session(ssl: *mut sys::SSL) {
    // SAFETY: per the contract.
    unsafe {
        let Some(cache) = callback_data(ssl).and_then(|d| d.sessions.as_ref()) else { return };
        if sys::SSL_session_reused(ssl) != 1 || sys::SSL_version(ssl) >= sys::TLS1_3_VERSION {
            return;
        }
        let session = sys::SSL_get_session(ssl);
        if session.is_null() {
            return;
        }
        // A reference of our own, for the cache to take.
        sys::SSL_SESSION_up_ref(session);
        if cache.store(ssl, session) == 0 {
            // Not taken: drop it again.
            sys::SSL_SESSION_free(session);
        }
    }
}

unsafe extern "C" fn new_session(ssl: *mut sys::SSL, session: *mut sys::SSL_SESSION) -> libc::c_int {
    // SAFETY: OpenSSL calls this with a live SSL from one of our contexts.
    let Some(cache) = (unsafe { callback_data(ssl) }).and_then(|d| d.sessions.as_ref()) else { return 0 };
    // SAFETY: as above; returning 1 takes over OpenSSL's reference.
    unsafe { cache.store(ssl, session) }
}
