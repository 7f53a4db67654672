//! `Config`: what a TLS client or server is, validated in two stages.
//!
//! `ConfigBuilder::build` checks only internal consistency. Everything that
//! needs the file system or OpenSSL (loading certificates, keys, CAs) is
//! checked when the `Config` is first used in a role, by `client`, `server`,
//! `connect` or `Listener::bind`, always before any byte is sent; the
//! resulting `SSL_CTX` is kept and shared by every later connection.

use std::fmt;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::error::ConfigError;
use crate::ffi::{SessionCache, SslCtx, VerifyMode};

/// A protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl Version {
    pub(crate) fn raw(self) -> libc::c_int {
        match self {
            Version::Tls12 => openssl_sys::TLS1_2_VERSION,
            Version::Tls13 => openssl_sys::TLS1_3_VERSION,
        }
    }

    pub(crate) fn from_raw(v: libc::c_int) -> Option<Version> {
        match v {
            openssl_sys::TLS1_2_VERSION => Some(Version::Tls12),
            openssl_sys::TLS1_3_VERSION => Some(Version::Tls13),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::Tls12 => "TLSv1.2",
            Version::Tls13 => "TLSv1.3",
        })
    }
}

/// How a server treats client certificates, with Go's meanings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ClientAuth {
    /// Do not ask for one.
    #[default]
    NoClientCert,
    /// Ask; accept any certificate, or none, without verifying it.
    RequestClientCert,
    /// Require one; accept any certificate without verifying it.
    RequireAnyClientCert,
    /// Verify it against `client_ca_file` if one is sent.
    VerifyClientCertIfGiven,
    /// Require one and verify it against `client_ca_file`.
    RequireAndVerifyClientCert,
}

/// An immutable TLS configuration, cheap to clone and share. It keeps one
/// OpenSSL context per role once used, and (for clients) a session cache so
/// later dials to the same server resume.
///
/// ```no_run
/// let client = tls::Config::builder()
///     .ca_file("ca.pem")                 // trust this CA instead of the system roots
///     .alpn_protocols(["h2", "http/1.1"])
///     .build()?;
/// let server = tls::Config::builder()
///     .cert_file("server.pem")
///     .key_file("server.key")
///     .build()?;
/// # Ok::<(), tls::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Config {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    client: OnceLock<Result<Arc<SslCtx>, ConfigError>>,
    server: OnceLock<Result<Arc<SslCtx>, ConfigError>>,
    sessions: Arc<SessionCache>,
}

/// A password, kept out of `Debug` output.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) server_name: Option<String>,
    pub(crate) verify_peer: bool,
    pub(crate) client_auth: ClientAuth,
    pub(crate) cert_file: Option<PathBuf>,
    pub(crate) key_file: Option<PathBuf>,
    pub(crate) key_password: Option<Secret>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) client_ca_file: Option<PathBuf>,
    pub(crate) alpn: Vec<String>,
    pub(crate) handshake_timeout: Option<Duration>,
    pub(crate) min_version: Version,
    pub(crate) max_version: Option<Version>,
    pub(crate) keylog_file: Option<PathBuf>,
    pub(crate) session_resumption: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server_name: None,
            verify_peer: true,
            client_auth: ClientAuth::NoClientCert,
            cert_file: None,
            key_file: None,
            key_password: None,
            ca_file: None,
            client_ca_file: None,
            alpn: Vec::new(),
            handshake_timeout: None,
            min_version: Version::Tls12,
            max_version: None,
            keylog_file: None,
            session_resumption: true,
        }
    }
}

/// Builds a [`Config`]; every setter takes and returns `Self`.
#[derive(Clone, Debug, Default)]
pub struct ConfigBuilder {
    s: Settings,
}

impl ConfigBuilder {
    /// The name to verify the server's certificate against (and send as
    /// SNI, unless it is an IP address). Derived from the dial target when
    /// unset.
    pub fn server_name(mut self, name: &str) -> Self {
        self.s.server_name = Some(name.to_string());
        self
    }

    /// Verify the peer's certificate chain and name (default `true`). Turn
    /// off only for tests: anyone can then impersonate the server.
    pub fn verify_peer(mut self, on: bool) -> Self {
        self.s.verify_peer = on;
        self
    }

    /// How a server treats client certificates (default `NoClientCert`).
    pub fn client_auth(mut self, mode: ClientAuth) -> Self {
        self.s.client_auth = mode;
        self
    }

    /// PEM certificate chain, leaf first: required for servers, optional
    /// for clients (mutual TLS).
    pub fn cert_file(mut self, path: impl AsRef<Path>) -> Self {
        self.s.cert_file = Some(path.as_ref().to_path_buf());
        self
    }

    /// PEM private key for `cert_file`.
    pub fn key_file(mut self, path: impl AsRef<Path>) -> Self {
        self.s.key_file = Some(path.as_ref().to_path_buf());
        self
    }

    /// The password of an encrypted `key_file`. Without it an encrypted key
    /// is a `ConfigError` ("… is encrypted: set key_password"); reseau never
    /// asks for a password on the terminal.
    pub fn key_password(mut self, password: impl Into<String>) -> Self {
        self.s.key_password = Some(Secret(password.into()));
        self
    }

    /// CAs a client trusts: a PEM file or an OpenSSL hashed directory.
    /// Without it, the system roots are used.
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.s.ca_file = Some(path.as_ref().to_path_buf());
        self
    }

    /// CAs a server verifies client certificates against.
    pub fn client_ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.s.client_ca_file = Some(path.as_ref().to_path_buf());
        self
    }

    /// ALPN protocols in preference order (`"h2"`, `"http/1.1"`).
    pub fn alpn_protocols(mut self, protocols: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.s.alpn = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Bound the handshake: while it runs, each transport deadline becomes
    /// the earlier of its own value and now + `timeout`. `Duration::ZERO`
    /// means no bound.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.s.handshake_timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// The lowest version accepted (default TLS 1.2; nothing older is
    /// ever accepted).
    pub fn min_version(mut self, v: Version) -> Self {
        self.s.min_version = v;
        self
    }

    /// The highest version offered (default: the highest supported).
    pub fn max_version(mut self, v: Version) -> Self {
        self.s.max_version = Some(v);
        self
    }

    /// Append NSS key-log lines (for Wireshark) to this file. Anyone who
    /// reads it can decrypt the traffic: for debugging only.
    pub fn keylog_file(mut self, path: impl AsRef<Path>) -> Self {
        self.s.keylog_file = Some(path.as_ref().to_path_buf());
        self
    }

    /// Resume earlier sessions with the same server (clients; default
    /// `true`). Off, every handshake is a full one.
    pub fn session_resumption(mut self, on: bool) -> Self {
        self.s.session_resumption = on;
        self
    }

    /// Check the settings against each other and build the `Config`.
    /// Files are checked later, when the `Config` is first used.
    pub fn build(self) -> Result<Config, ConfigError> {
        let s = self.s;
        match (&s.cert_file, &s.key_file) {
            (Some(_), None) => return Err(ConfigError("cert_file is set but key_file is not".into())),
            (None, Some(_)) => return Err(ConfigError("key_file is set but cert_file is not".into())),
            _ => {}
        }
        if let Some(max) = s.max_version {
            if max < s.min_version {
                return Err(ConfigError(format!("min_version {} is above max_version {max}", s.min_version)));
            }
        }
        for p in &s.alpn {
            if p.is_empty() || p.len() > 255 {
                return Err(ConfigError(format!("ALPN protocol names must be 1 to 255 bytes, got {p:?}")));
            }
        }
        if s.server_name.as_deref() == Some("") {
            return Err(ConfigError("server_name is empty".into()));
        }
        Ok(Config {
            inner: Arc::new(Inner {
                settings: s,
                client: OnceLock::new(),
                server: OnceLock::new(),
                sessions: Arc::new(SessionCache::new()),
            }),
        })
    }
}

impl Config {
    /// Start building a configuration.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The configured server name, if any.
    pub fn server_name(&self) -> Option<&str> {
        self.inner.settings.server_name.as_deref()
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub(crate) fn sessions(&self) -> &SessionCache {
        &self.inner.sessions
    }

    /// The client context, built (and its files checked) on first use.
    pub(crate) fn client_ctx(&self) -> Result<Arc<SslCtx>, ConfigError> {
        self.inner.client.get_or_init(|| self.build_client().map(Arc::new)).clone()
    }

    /// The server context, built (and its files checked) on first use.
    pub(crate) fn server_ctx(&self) -> Result<Arc<SslCtx>, ConfigError> {
        self.inner.server.get_or_init(|| self.build_server().map(Arc::new)).clone()
    }

    fn common(&self, server: bool) -> Result<SslCtx, ConfigError> {
        let s = &self.inner.settings;
        let mut ctx = SslCtx::new(server).map_err(ConfigError)?;
        ctx.set_key_password(s.key_password.as_ref().map(|p| p.0.as_str()));
        ctx.set_versions(s.min_version.raw(), s.max_version.map(Version::raw)).map_err(ConfigError)?;
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
        let s = &self.inner.settings;
        // A CA file that is named but missing is a mistake even when it
        // goes unused (verification off).
        if let Some(path) = &s.ca_file {
            require_exists(path, "ca_file")?;
        }
        let mut ctx = self.common(false)?;
        if s.verify_peer {
            ctx.set_verify(VerifyMode::RequireAndVerify);
            match &s.ca_file {
                Some(path) => ctx.load_verify_locations(path).map_err(ConfigError)?,
                None => load_system_roots(&mut ctx)?,
            }
        } else {
            ctx.set_verify(VerifyMode::Off);
        }
        if let (Some(cert), Some(key)) = (&s.cert_file, &s.key_file) {
            require_exists(cert, "cert_file")?;
            require_exists(key, "key_file")?;
            ctx.use_certificate(cert, key).map_err(ConfigError)?;
        }
        if !s.alpn.is_empty() {
            ctx.set_alpn_protos(&alpn_wire(&s.alpn)).map_err(ConfigError)?;
        }
        if s.session_resumption {
            ctx.set_client_session_cache(self.inner.sessions.clone());
        }
        Ok(ctx)
    }

    fn build_server(&self) -> Result<SslCtx, ConfigError> {
        let s = &self.inner.settings;
        let (Some(cert), Some(key)) = (&s.cert_file, &s.key_file) else {
            return Err(ConfigError("a server needs cert_file and key_file".into()));
        };
        require_exists(cert, "cert_file")?;
        require_exists(key, "key_file")?;
        // Servers do not use ca_file, but a named one must exist.
        if let Some(path) = &s.ca_file {
            require_exists(path, "ca_file")?;
        }
        let mut ctx = self.common(true)?;
        ctx.use_certificate(cert, key).map_err(ConfigError)?;
        let mode = match s.client_auth {
            ClientAuth::NoClientCert => VerifyMode::Off,
            ClientAuth::RequestClientCert => VerifyMode::RequestAny,
            ClientAuth::RequireAnyClientCert => VerifyMode::RequireAny,
            ClientAuth::VerifyClientCertIfGiven => VerifyMode::VerifyIfGiven,
            ClientAuth::RequireAndVerifyClientCert => VerifyMode::RequireAndVerify,
        };
        let verifies = matches!(mode, VerifyMode::VerifyIfGiven | VerifyMode::RequireAndVerify);
        match &s.client_ca_file {
            Some(path) => {
                require_exists(path, "client_ca_file")?;
                ctx.load_verify_locations(path).map_err(ConfigError)?;
                if path.is_file() {
                    ctx.set_client_ca_list(path).map_err(ConfigError)?;
                }
            }
            None if verifies => {
                return Err(ConfigError(format!("client_auth {:?} needs client_ca_file", s.client_auth)));
            }
            None => {}
        }
        ctx.set_verify(mode);
        if !s.alpn.is_empty() {
            ctx.set_alpn_select(alpn_wire(&s.alpn));
        }
        ctx.set_session_id_context(b"reseau");
        Ok(ctx)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config").field("settings", &self.inner.settings).finish_non_exhaustive()
    }
}

fn require_exists(path: &Path, what: &str) -> Result<(), ConfigError> {
    if path.exists() { Ok(()) } else { Err(ConfigError(format!("{what} {} does not exist", path.display()))) }
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

/// The system's trusted roots: `SSL_CERT_FILE` / `SSL_CERT_DIR` when set,
/// else the first bundle found at the usual places, else OpenSSL's defaults.
fn load_system_roots(ctx: &mut SslCtx) -> Result<(), ConfigError> {
    for var in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
        if let Some(path) = std::env::var_os(var).map(PathBuf::from) {
            if path.exists() {
                return ctx.load_verify_locations(&path).map_err(ConfigError);
            }
        }
    }
    const BUNDLES: [&str; 6] = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        "/etc/ssl/cert.pem",
        "/etc/ssl/certs",
    ];
    match BUNDLES.iter().map(Path::new).find(|p| p.exists()) {
        Some(path) => ctx.load_verify_locations(path).map_err(ConfigError),
        None => ctx.set_default_verify_paths().map_err(ConfigError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_checks_consistency() {
        assert!(Config::builder().cert_file("a").build().is_err());
        assert!(Config::builder().key_file("a").build().is_err());
        assert!(Config::builder().min_version(Version::Tls13).max_version(Version::Tls12).build().is_err());
        assert!(Config::builder().alpn_protocols([""]).build().is_err());
        assert!(Config::builder().alpn_protocols(["x".repeat(256)]).build().is_err());
        assert!(Config::builder().build().is_ok());
        assert_eq!(Version::Tls13.to_string(), "TLSv1.3");
        assert!(Version::Tls12 < Version::Tls13);
    }

    #[test]
    fn files_are_checked_on_first_use() {
        let c = Config::builder().cert_file("/nonexistent/c.pem").key_file("/nonexistent/k.pem").build().unwrap();
        let e = c.server_ctx().err().expect("missing files");
        assert!(e.0.contains("does not exist"), "{e}");
        let e = Config::builder().build().unwrap().server_ctx().err().expect("no certificate");
        assert!(e.0.contains("cert_file"), "{e}");
        let e = Config::builder().ca_file("/nonexistent/ca.pem").build().unwrap().client_ctx().err().expect("no CA");
        assert!(e.0.contains("ca_file"), "{e}");
    }
}
