//! What turns a [`Config`] into working OpenSSL state: the credentials
//! loaded and checked at `build` (certificate chains, keys, trust), the
//! `SSL_CTX` each role gets on first use, the system roots a client falls
//! back on, the client session cache, a server's session ticket keys, and
//! the calls out to the user's resolver and hooks. `config.rs` keeps the
//! public builder; this is the factory behind it (as rustls keeps its
//! builders apart from what they build).
//!
//! # Locks
//! The role contexts are built once, under their `OnceLock`s (no user code
//! runs there). The session cache and the ticket keys have their own (see
//! `ffi/session.rs`, `ffi/tickets.rs`). The resolver and the hooks run with
//! none held.

use std::ffi::CString;
use std::fmt;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::config::{ClientAuth, Config, Settings, Version};
use crate::error::{ConfigError, Error, TlsError};
use crate::ffi::{
    Cert, Chosen, HelloInfo, KeyPair, PemError, SessionCache, SslCtx, TicketKeys, VerifyMode, parse_certs, parse_key,
};
use crate::resolver::ClientHello;
use crate::state::ConnectionState;

/// The working state of one `Config`, shared by its clones.
pub(crate) struct Contexts {
    credentials: Credentials,
    client: OnceLock<Result<Arc<SslCtx>, ConfigError>>,
    server: OnceLock<Result<Arc<SslCtx>, ConfigError>>,
    sessions: Arc<SessionCache>,
    /// A server's session ticket keys, shared by its contexts' callbacks.
    pub(crate) tickets: Arc<TicketKeys>,
}

impl Contexts {
    /// Load and check what `s` names (files are read here), and check the
    /// curve and cipher lists on OpenSSL; `ticket_keys`: the user's, or
    /// `None` for the server's own.
    pub(crate) fn load(s: &Settings, ticket_keys: Option<Vec<[u8; 32]>>) -> Result<Contexts, ConfigError> {
        let credentials = Credentials::load(s)?;
        if let Some(groups) = &s.curves {
            checked_list("curve_preferences", groups, SslCtx::set_groups)?;
        }
        if let Some(suites) = &s.cipher_suites {
            checked_list("cipher_suites", suites, SslCtx::set_cipher_list)?;
        }
        if let Some(suites) = &s.tls13_cipher_suites {
            checked_list("tls13_cipher_suites", suites, SslCtx::set_ciphersuites)?;
        }
        Ok(Contexts {
            credentials,
            client: OnceLock::new(),
            server: OnceLock::new(),
            sessions: Arc::new(SessionCache::new(s.session_cache_capacity)),
            tickets: Arc::new(TicketKeys::new(ticket_keys)),
        })
    }
}

/// A password, kept out of `Debug` output.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where PEM data comes from: a file, read at `build`, or memory.
#[derive(Clone)]
pub(crate) enum Pem {
    File(PathBuf),
    Memory(Vec<u8>),
}

impl Pem {
    pub(crate) fn file(path: impl AsRef<Path>) -> Pem {
        Pem::File(path.as_ref().to_path_buf())
    }

    /// How messages name it: `cert_file /etc/x.pem`, or `cert_pem`.
    fn name(&self, file: &str, memory: &str) -> String {
        match self {
            Pem::File(p) => format!("{file} {}", p.display()),
            Pem::Memory(_) => memory.to_string(),
        }
    }

    fn read(&self, name: &str) -> Result<std::borrow::Cow<'_, [u8]>, ConfigError> {
        match self {
            Pem::Memory(bytes) => Ok(bytes.into()),
            Pem::File(p) => std::fs::read(p).map(Into::into).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => ConfigError(format!("{name} does not exist")),
                _ => ConfigError(format!("cannot read {name}: {e}")),
            }),
        }
    }
}

/// PEM from memory is never printed: it may be a private key.
impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(p) => write!(f, "File({})", p.display()),
            Pem::Memory(b) => write!(f, "Memory(<{} bytes>)", b.len()),
        }
    }
}

/// Trusted CA certificates: parsed, or an OpenSSL hashed directory (read
/// lazily by OpenSSL, so only its existence is checked).
enum Trust {
    Certs(Vec<Cert>),
    Dir(PathBuf),
}

impl Trust {
    fn load(pem: &Pem, name: &str) -> Result<Trust, ConfigError> {
        match pem {
            Pem::File(p) if p.is_dir() => Ok(Trust::Dir(p.clone())),
            _ => certs(&pem.read(name)?, name).map(Trust::Certs),
        }
    }

    fn apply(&self, ctx: &mut SslCtx) -> Result<(), ConfigError> {
        match self {
            Trust::Certs(certs) => ctx.trust(certs).map_err(ConfigError),
            Trust::Dir(dir) => ctx.load_verify_locations(dir).map_err(ConfigError),
        }
    }
}

/// What `build` loaded and checked.
#[derive(Default)]
struct Credentials {
    /// Certificate/key pairs; the first is the default (and the client's).
    pairs: Vec<KeyPair>,
    ca: Option<Trust>,
    client_ca: Option<Trust>,
}

/// The certificates in `pem`, or a `ConfigError` naming `name`.
fn certs(pem: &[u8], name: &str) -> Result<Vec<Cert>, ConfigError> {
    parse_certs(pem).map_err(|e| {
        ConfigError(match e {
            PemError::Missing => format!("{name} holds no PEM certificate"),
            _ => format!("{name} holds a malformed PEM certificate"),
        })
    })
}

/// Load and check one certificate/key pair; `hint` says how to give the
/// password of an encrypted key, and what that password is called.
pub(crate) fn key_pair(
    cert: &Pem,
    key: &Pem,
    password: Option<&Secret>,
    names: [&str; 4],
    hint: (&str, &str),
) -> Result<KeyPair, ConfigError> {
    let (needs, password_name) = hint;
    let [cert_file, cert_pem, key_file, key_pem] = names;
    let (cert_name, key_name) = (cert.name(cert_file, cert_pem), key.name(key_file, key_pem));
    let chain = certs(&cert.read(&cert_name)?, &cert_name)?;
    let key = parse_key(&key.read(&key_name)?, password.map(|p| p.0.as_str())).map_err(|e| {
        ConfigError(match e {
            PemError::Missing => format!("{key_name} holds no PEM private key"),
            PemError::Malformed => format!("{key_name} holds a malformed or unsupported private key"),
            PemError::NeedsPassword => format!("{key_name} is encrypted: {needs}"),
            PemError::WrongPassword => format!("{key_name} is encrypted and {password_name} does not open it"),
        })
    })?;
    if !chain[0].matches(&key) {
        return Err(ConfigError(format!(
            "{key_name} does not match {cert_name}: the key belongs to another certificate"
        )));
    }
    Ok(KeyPair { chain, key })
}

/// One list setting as OpenSSL's colon-separated string, each entry tried
/// alone on a scratch context so the error names the entry at fault.
fn checked_list(
    what: &str,
    items: &[String],
    apply: impl Fn(&mut SslCtx, &std::ffi::CStr) -> Result<(), String>,
) -> Result<CString, ConfigError> {
    if items.is_empty() {
        return Err(ConfigError(format!("{what} is empty")));
    }
    let mut scratch = SslCtx::new(false).map_err(ConfigError)?;
    for item in items {
        let c = CString::new(item.as_str()).ok().filter(|_| !item.is_empty() && !item.contains(':'));
        if c.is_none_or(|c| apply(&mut scratch, &c).is_err()) {
            return Err(ConfigError(format!("{what}: {item:?} is not a name OpenSSL knows")));
        }
    }
    let list = CString::new(items.join(":")).map_err(|_| ConfigError(format!("{what}: a NUL byte")))?;
    apply(&mut scratch, &list).map_err(|e| ConfigError(format!("{what}: {e}")))?;
    Ok(list)
}

impl Credentials {
    fn load(s: &Settings) -> Result<Credentials, ConfigError> {
        let mut pairs = Vec::new();
        if let (Some(cert), Some(key)) = (&s.cert, &s.key) {
            let names = ["cert_file", "cert_pem", "key_file", "key_pem"];
            pairs.push(key_pair(cert, key, s.key_password.as_ref(), names, ("set key_password", "key_password"))?);
        }
        for (cert, key) in &s.more_certificates {
            let names = [
                "add_certificate_files cert",
                "add_certificate_pem cert",
                "add_certificate_files key",
                "add_certificate_pem key",
            ];
            pairs.push(key_pair(cert, key, s.key_password.as_ref(), names, ("set key_password", "key_password"))?);
        }
        let ca = s.ca.as_ref().map(|p| Trust::load(p, &p.name("ca_file", "ca_pem"))).transpose()?;
        let client_ca =
            s.client_ca.as_ref().map(|p| Trust::load(p, &p.name("client_ca_file", "client_ca_pem"))).transpose()?;
        Ok(Credentials { pairs, ca, client_ca })
    }
}

impl Config {
    pub(crate) fn sessions(&self) -> &SessionCache {
        &self.inner.contexts.sessions
    }

    /// The client context, built (and its files checked) on first use.
    pub(crate) fn client_ctx(&self) -> Result<Arc<SslCtx>, ConfigError> {
        self.inner.contexts.client.get_or_init(|| self.build_client().map(Arc::new)).clone()
    }

    /// The server context, built (and its files checked) on first use.
    pub(crate) fn server_ctx(&self) -> Result<Arc<SslCtx>, ConfigError> {
        self.inner.contexts.server.get_or_init(|| self.build_server().map(Arc::new)).clone()
    }

    /// Run the user's `verify_peer_certificate` (if any) on the peer's
    /// chain, then `verify_connection` (if any) on the state. Called once
    /// OpenSSL's handshake is done, with no lock held; a panic in either
    /// fails the handshake.
    pub(crate) fn check_handshake(
        &self,
        chain: impl FnOnce() -> Vec<Vec<u8>>,
        state: impl FnOnce() -> ConnectionState,
    ) -> Result<(), Error> {
        let s = &self.inner.settings;
        if let Some(check) = &s.verify_hook {
            let chain = chain();
            hook("verify_peer_certificate", "the peer", || check(&chain))?;
        }
        if let Some(check) = &s.connection_hook {
            let state = state();
            hook("verify_connection", "the connection", || check(&state))?;
        }
        Ok(())
    }

    /// Ask the `certificate_resolver` about a ClientHello, with no lock
    /// held: the certificate to serve, `None` for the configured ones, or
    /// why the handshake fails (its `Err`, its panic, or `None` with
    /// nothing configured).
    pub(crate) fn resolve(&self, info: &HelloInfo) -> Result<Option<Chosen>, String> {
        let Some(resolve) = &self.inner.settings.resolver else { return Ok(None) };
        let hello = ClientHello { info };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| resolve(&hello))) {
            Ok(Ok(Some(key))) => Ok(Some(key.chosen())),
            Ok(Ok(None)) if self.inner.contexts.credentials.pairs.is_empty() => {
                Err("certificate_resolver chose no certificate, and the config has none of its own".into())
            }
            Ok(Ok(None)) => Ok(None),
            Ok(Err(msg)) => Err(format!("certificate_resolver refused the handshake: {msg}")),
            Err(panic) => Err(format!("certificate_resolver panicked: {}", panic_message(&*panic))),
        }
    }

    fn common(&self, server: bool) -> Result<SslCtx, ConfigError> {
        let s = &self.inner.settings;
        let mut ctx = SslCtx::new(server).map_err(ConfigError)?;
        ctx.set_versions(s.min_version.raw(), s.max_version.map(Version::raw)).map_err(ConfigError)?;
        // The lists were checked at build; these cannot fail now.
        if let Some(groups) = &s.curves {
            ctx.set_groups(&checked_list("curve_preferences", groups, SslCtx::set_groups)?).map_err(ConfigError)?;
        }
        if let Some(suites) = &s.cipher_suites {
            let list = checked_list("cipher_suites", suites, SslCtx::set_cipher_list)?;
            ctx.set_cipher_list(&list).map_err(ConfigError)?;
        }
        if let Some(suites) = &s.tls13_cipher_suites {
            let list = checked_list("tls13_cipher_suites", suites, SslCtx::set_ciphersuites)?;
            ctx.set_ciphersuites(&list).map_err(ConfigError)?;
        }
        if let Some(path) = &s.keylog_file {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| ConfigError(format!("cannot open key-log file {}: {e}", path.display())))?;
            ctx.set_keylog(file);
        }
        Ok(ctx)
    }

    fn build_client(&self) -> Result<SslCtx, ConfigError> {
        let (s, creds) = (&self.inner.settings, &self.inner.contexts.credentials);
        let mut ctx = self.common(false)?;
        if s.verify_peer {
            ctx.set_verify(VerifyMode::RequireAndVerify);
            match &creds.ca {
                Some(trust) => trust.apply(&mut ctx)?,
                None => system_roots()?.apply(&mut ctx)?,
            }
        } else {
            ctx.set_verify(VerifyMode::Off);
        }
        if let Some(pair) = creds.pairs.first() {
            ctx.use_key_pair(pair).map_err(ConfigError)?;
        }
        if !s.alpn.is_empty() {
            ctx.set_alpn_protos(&alpn_wire(&s.alpn)).map_err(ConfigError)?;
        }
        if s.session_resumption {
            ctx.set_client_session_cache(self.inner.contexts.sessions.clone());
        }
        Ok(ctx)
    }

    fn build_server(&self) -> Result<SslCtx, ConfigError> {
        let (s, creds) = (&self.inner.settings, &self.inner.contexts.credentials);
        if creds.pairs.is_empty() && s.resolver.is_none() {
            return Err(ConfigError(
                "a server needs a certificate: set cert_file and key_file (or cert_pem and key_pem), or a certificate_resolver".into(),
            ));
        }
        let mut ctx = self.common(true)?;
        if let Some(first) = creds.pairs.first() {
            ctx.use_key_pair(first).map_err(ConfigError)?;
        }
        if s.resolver.is_some() {
            ctx.resolve_certificates();
        }
        if creds.pairs.len() > 1 {
            ctx.select_by_sni(creds.pairs.iter().map(KeyPair::share).collect());
        }
        let mode = match s.client_auth {
            ClientAuth::NoClientCert => VerifyMode::Off,
            ClientAuth::RequestClientCert => VerifyMode::RequestAny,
            ClientAuth::RequireAnyClientCert => VerifyMode::RequireAny,
            ClientAuth::VerifyClientCertIfGiven => VerifyMode::VerifyIfGiven,
            ClientAuth::RequireAndVerifyClientCert => VerifyMode::RequireAndVerify,
        };
        let verifies = matches!(mode, VerifyMode::VerifyIfGiven | VerifyMode::RequireAndVerify);
        match &creds.client_ca {
            Some(trust) => {
                trust.apply(&mut ctx)?;
                if let Trust::Certs(cas) = trust {
                    ctx.set_client_ca_names(cas).map_err(ConfigError)?;
                }
            }
            None if verifies => {
                return Err(ConfigError(format!(
                    "client_auth {:?} needs client_ca_file or client_ca_pem",
                    s.client_auth
                )));
            }
            None => {}
        }
        ctx.set_verify(mode);
        if !s.alpn.is_empty() {
            ctx.set_alpn_select(alpn_wire(&s.alpn));
        }
        ctx.set_session_id_context(b"reseau");
        if s.session_tickets {
            ctx.set_ticket_keys(self.inner.contexts.tickets.clone());
            // One TLS 1.3 ticket per handshake, as Go's server sends: a
            // client resumes with one, and reseau's client keeps only the
            // newest per server, so OpenSSL's second was made for nothing.
            ctx.set_num_tickets(1);
        } else {
            ctx.disable_resumption();
        }
        Ok(ctx)
    }
}

/// Run the user's hook `name`: its `Err(msg)`, or its panic, fails the
/// handshake with a message naming the hook.
fn hook(name: &str, what: &str, f: impl FnOnce() -> Result<(), String>) -> Result<(), Error> {
    let message = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(msg)) => format!("{name} rejected {what}: {msg}"),
        Err(panic) => format!("{name} panicked: {}", panic_message(&*panic)),
    };
    Err(Error::Tls(TlsError::new("handshake", message)))
}

/// The text of a panic's payload, when it is a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str)).unwrap_or("?")
}

/// ALPN protocol names in wire format: each prefixed with its length.
fn alpn_wire(protocols: &[String]) -> Vec<u8> {
    let mut wire = Vec::new();
    for p in protocols {
        wire.push(p.len() as u8);
        wire.extend_from_slice(p.as_bytes());
    }
    wire
}

/// The system's trusted roots: `SSL_CERT_FILE` / `SSL_CERT_DIR` when set
/// (and then they must exist), else the first bundle found at the usual
/// places, else OpenSSL's compiled-in defaults. Finding none, or a bundle
/// without certificates, is a `ConfigError`: a client that cannot trust
/// anything should fail at once, not at its first handshake.
fn system_roots() -> Result<Trust, ConfigError> {
    let file = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()).map(PathBuf::from);
    let dir = std::env::var_os("SSL_CERT_DIR").filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(path) = file {
        let name = format!("SSL_CERT_FILE {}", path.display());
        if dir.is_some() {
            // Both set: OpenSSL would use both; the file must still be good.
            Trust::load(&Pem::File(path), &name)?;
        } else {
            return Trust::load(&Pem::File(path), &name);
        }
    }
    if let Some(path) = dir {
        // OpenSSL takes a colon-separated list; each entry must exist.
        for entry in std::env::split_paths(&path) {
            if !entry.is_dir() {
                return Err(ConfigError(format!("SSL_CERT_DIR {} is not a directory", entry.display())));
            }
        }
        return Ok(Trust::Dir(path));
    }
    const BUNDLES: [&str; 6] = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        "/etc/ssl/cert.pem",
        "/etc/ssl/certs",
    ];
    let defaults = crate::ffi::default_ca_paths();
    let found = BUNDLES.iter().map(PathBuf::from).chain(defaults).find(|p| p.exists());
    match found {
        Some(path) => {
            let name = format!("the system CA bundle {}", path.display());
            Trust::load(&Pem::File(path), &name)
        }
        None => Err(ConfigError(
            "no system CA certificates found (looked at SSL_CERT_FILE, SSL_CERT_DIR and the usual bundles): set ca_file or ca_pem".into(),
        )),
    }
}
