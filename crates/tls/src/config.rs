//! `Config`: what a TLS client or server is, validated in two stages. This
//! file is the public builder; `context.rs` turns the settings into
//! OpenSSL state.
//!
//! `ConfigBuilder::build` checks the settings against each other and loads
//! the credentials: it reads the certificate, key and CA files (or PEM from
//! memory), parses them, opens an encrypted key, checks that each key
//! matches its certificate, and tries the curve and cipher lists on
//! OpenSSL, failing with a plain-worded `ConfigError` as Go's
//! `LoadX509KeyPair` does. What depends on the role (a server without a
//! certificate, verified client auth without client CAs, the system roots a
//! client falls back on) is checked when the `Config` is first used as
//! that role, by `client`, `server`, `connect` or `Listener::bind`, always
//! before any byte is sent; the resulting `SSL_CTX` is kept and shared by
//! every later connection.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::context::{Contexts, Pem, Secret};
use crate::error::ConfigError;
use crate::resolver::{CertifiedKey, ClientHello, Resolver};
use crate::state::ConnectionState;

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

/// An immutable TLS configuration, cheap to clone and share. It keeps its
/// parsed credentials, one OpenSSL context per role once used, and (for
/// clients) a session cache so later dials to the same server resume.
///
/// ```no_run
/// let client = tls::Config::builder()
///     .ca_file("ca.pem")                 // trust this CA instead of the system roots
///     .alpn_protocols(["h2", "http/1.1"])
///     .build()?;
/// let server = tls::Config::builder()
///     .cert_file("server.pem")           // files are read and checked here
///     .key_file("server.key")
///     .build()?;
/// # Ok::<(), tls::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Config {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) settings: Settings,
    /// What the settings were turned into (see `context.rs`).
    pub(crate) contexts: Contexts,
}

/// Session ticket keys as given to the builder: never printed, wiped when
/// dropped.
#[derive(Clone, Default)]
struct TicketSecrets(Vec<[u8; 32]>);

impl fmt::Debug for TicketSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} keys>", self.0.len())
    }
}

impl Drop for TicketSecrets {
    fn drop(&mut self) {
        for k in &mut self.0 {
            crate::ffi::wipe(k);
        }
    }
}

/// The user's `verify_peer_certificate` hook.
pub(crate) type VerifyHook = Arc<dyn Fn(&[Vec<u8>]) -> Result<(), String> + Send + Sync>;
/// The user's `verify_connection` hook.
pub(crate) type ConnectionHook = Arc<dyn Fn(&ConnectionState) -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) server_name: Option<String>,
    pub(crate) verify_peer: bool,
    pub(crate) client_auth: ClientAuth,
    pub(crate) cert: Option<Pem>,
    pub(crate) key: Option<Pem>,
    pub(crate) key_password: Option<Secret>,
    /// Further certificate/key pairs, chosen by SNI.
    pub(crate) more_certificates: Vec<(Pem, Pem)>,
    pub(crate) ca: Option<Pem>,
    pub(crate) client_ca: Option<Pem>,
    pub(crate) alpn: Vec<String>,
    pub(crate) handshake_timeout: Option<Duration>,
    pub(crate) min_version: Version,
    pub(crate) max_version: Option<Version>,
    pub(crate) keylog_file: Option<PathBuf>,
    pub(crate) session_resumption: bool,
    pub(crate) session_tickets: bool,
    pub(crate) curves: Option<Vec<String>>,
    pub(crate) cipher_suites: Option<Vec<String>>,
    pub(crate) tls13_cipher_suites: Option<Vec<String>>,
    pub(crate) verify_hook: Option<VerifyHook>,
    pub(crate) connection_hook: Option<ConnectionHook>,
    pub(crate) resolver: Option<Resolver>,
    ticket_keys: Option<TicketSecrets>,
    /// `None`: as `verify_peer`.
    pub(crate) verify_hostname: Option<bool>,
    pub(crate) session_cache_capacity: usize,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("server_name", &self.server_name)
            .field("verify_peer", &self.verify_peer)
            .field("client_auth", &self.client_auth)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("key_password", &self.key_password)
            .field("more_certificates", &self.more_certificates)
            .field("ca", &self.ca)
            .field("client_ca", &self.client_ca)
            .field("alpn", &self.alpn)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("min_version", &self.min_version)
            .field("max_version", &self.max_version)
            .field("keylog_file", &self.keylog_file)
            .field("session_resumption", &self.session_resumption)
            .field("session_tickets", &self.session_tickets)
            .field("curves", &self.curves)
            .field("cipher_suites", &self.cipher_suites)
            .field("tls13_cipher_suites", &self.tls13_cipher_suites)
            .field("verify_peer_certificate", &self.verify_hook.as_ref().map(|_| "<fn>"))
            .field("verify_connection", &self.connection_hook.as_ref().map(|_| "<fn>"))
            .field("certificate_resolver", &self.resolver.as_ref().map(|_| "<fn>"))
            .field("session_ticket_keys", &self.ticket_keys)
            .field("verify_hostname", &self.verify_hostname())
            .field("session_cache_capacity", &self.session_cache_capacity)
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server_name: None,
            verify_peer: true,
            client_auth: ClientAuth::NoClientCert,
            cert: None,
            key: None,
            key_password: None,
            more_certificates: Vec::new(),
            ca: None,
            client_ca: None,
            alpn: Vec::new(),
            handshake_timeout: None,
            min_version: Version::Tls12,
            max_version: None,
            keylog_file: None,
            session_resumption: true,
            session_tickets: true,
            curves: None,
            cipher_suites: None,
            tls13_cipher_suites: None,
            verify_hook: None,
            connection_hook: None,
            resolver: None,
            ticket_keys: None,
            verify_hostname: None,
            session_cache_capacity: crate::ffi::DEFAULT_SESSION_CACHE_CAPACITY,
        }
    }
}

impl Settings {
    /// Whether a client checks the server's name (the chain is checked
    /// whenever `verify_peer` is on).
    pub(crate) fn verify_hostname(&self) -> bool {
        self.verify_peer && self.verify_hostname.unwrap_or(true)
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
    /// for clients (mutual TLS). Replaces `cert_pem`.
    pub fn cert_file(mut self, path: impl AsRef<Path>) -> Self {
        self.s.cert = Some(Pem::file(path));
        self
    }

    /// PEM private key for the certificate. Replaces `key_pem`.
    pub fn key_file(mut self, path: impl AsRef<Path>) -> Self {
        self.s.key = Some(Pem::file(path));
        self
    }

    /// As [`cert_file`](ConfigBuilder::cert_file), from memory: a PEM
    /// certificate chain, leaf first. Replaces `cert_file`.
    pub fn cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.s.cert = Some(Pem::Memory(pem.into()));
        self
    }

    /// As [`key_file`](ConfigBuilder::key_file), from memory. Never shown
    /// by `Debug`. Replaces `key_file`.
    pub fn key_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.s.key = Some(Pem::Memory(pem.into()));
        self
    }

    /// The password of an encrypted key (from a file or from memory; one
    /// password for every pair). Without it an encrypted key is a `ConfigError` ("… is encrypted: set
    /// key_password"); reseau never asks for a password on the terminal.
    pub fn key_password(mut self, password: impl Into<String>) -> Self {
        self.s.key_password = Some(Secret(password.into()));
        self
    }

    /// A further certificate chain and key for a server, from files. With
    /// several pairs the server picks, by the client's SNI, the first whose
    /// certificate is valid for the name (as Go does with
    /// `Config.Certificates`); a client without SNI, or naming no pair, gets
    /// the first pair: `cert_file`/`key_file` (or `cert_pem`/`key_pem`) if
    /// set, else the first one added. Clients use the first pair only.
    ///
    /// ```no_run
    /// let server = tls::Config::builder()
    ///     .cert_file("default.pem").key_file("default.key")
    ///     .add_certificate_files("api.pem", "api.key")   // for SNI api.example.com
    ///     .build()?;
    /// # Ok::<(), tls::ConfigError>(())
    /// ```
    pub fn add_certificate_files(mut self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        self.s.more_certificates.push((Pem::file(cert), Pem::file(key)));
        self
    }

    /// As [`add_certificate_files`](ConfigBuilder::add_certificate_files),
    /// from memory (PEM chain, leaf first, and PEM key).
    pub fn add_certificate_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.s.more_certificates.push((Pem::Memory(cert.into()), Pem::Memory(key.into())));
        self
    }

    /// CAs a client trusts: a PEM file or an OpenSSL hashed directory.
    /// Without it, the system roots are used. Replaces `ca_pem`.
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.s.ca = Some(Pem::file(path));
        self
    }

    /// As [`ca_file`](ConfigBuilder::ca_file), from memory: one or more
    /// PEM certificates. Replaces `ca_file`.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.s.ca = Some(Pem::Memory(pem.into()));
        self
    }

    /// CAs a server verifies client certificates against (a PEM file or a
    /// hashed directory); a file's subjects are also sent as the acceptable
    /// CAs. Replaces `client_ca_pem`.
    pub fn client_ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.s.client_ca = Some(Pem::file(path));
        self
    }

    /// As [`client_ca_file`](ConfigBuilder::client_ca_file), from memory.
    /// Replaces `client_ca_file`.
    pub fn client_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.s.client_ca = Some(Pem::Memory(pem.into()));
        self
    }

    /// A check of the peer's certificate chain of your own (Go's
    /// `VerifyPeerCertificate`), run once OpenSSL's own checks have passed
    /// (or were turned off with `verify_peer(false)` or an unverified
    /// `ClientAuth`), with the chain as the peer sent it: DER, leaf first;
    /// empty when a client sent none. `Err(msg)` fails the handshake with
    /// an `Error::Tls` whose message holds `msg`. It runs on the thread
    /// driving the handshake with no reseau lock held, on clients and on
    /// servers, on every handshake (resumed ones too).
    ///
    /// Pinning a server's certificate:
    ///
    /// ```no_run
    /// let pinned: Vec<u8> = std::fs::read("server.der")?;
    /// let config = tls::Config::builder()
    ///     .verify_peer_certificate(move |chain: &[Vec<u8>]| match chain.first() {
    ///         Some(leaf) if *leaf == pinned => Ok(()),
    ///         _ => Err("not the pinned certificate".to_string()),
    ///     })
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify_peer_certificate(
        mut self,
        check: impl Fn(&[Vec<u8>]) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.s.verify_hook = Some(Arc::new(check));
        self
    }

    /// Choose a server's certificate at handshake time (Go's
    /// `GetCertificate`, rustls's `ResolvesServerCert`): on every
    /// handshake, before the server picks a certificate, `resolve` is
    /// called with the [`ClientHello`] (SNI, ALPN offers).
    ///
    /// - `Ok(Some(key))` serves `key` (and its OCSP staple);
    /// - `Ok(None)` serves the configured pairs, chosen by SNI as without a
    ///   resolver;
    /// - `Err(msg)` fails the handshake with an `internal_error` alert, and
    ///   the server's `Error::Tls` holds `msg`.
    ///
    /// With a resolver a server needs no `cert_file`/`cert_pem` (and then
    /// `Ok(None)` fails the handshake). It runs on the thread driving the
    /// handshake, with the connection's engine unlocked and no lock of the
    /// `Config` or `Listener` held; a panic in it fails that handshake,
    /// never the process. Keep it quick: it is on every handshake's path.
    ///
    /// Reloading a certificate when its file changes:
    ///
    /// ```no_run
    /// use std::sync::{Arc, RwLock};
    /// let current = Arc::new(RwLock::new(tls::CertifiedKey::from_files("cert.pem", "key.pem")?));
    /// let serving = current.clone();
    /// let config = tls::Config::builder()
    ///     .certificate_resolver(move |_hello: &tls::ClientHello<'_>| Ok(Some(serving.read().unwrap().clone())))
    ///     .build()?;
    /// // Elsewhere, when the files change (a renewal):
    /// *current.write().unwrap() = tls::CertifiedKey::from_files("cert.pem", "key.pem")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn certificate_resolver(
        mut self,
        resolve: impl Fn(&ClientHello<'_>) -> Result<Option<CertifiedKey>, String> + Send + Sync + 'static,
    ) -> Self {
        self.s.resolver = Some(Arc::new(resolve));
        self
    }

    /// Whether a client checks that the server's certificate names the
    /// server (default: as [`verify_peer`](ConfigBuilder::verify_peer)).
    /// `false` still verifies the chain against the trusted CAs, but
    /// accepts a certificate for any name, as Reseau.jl's
    /// `verify_hostname=false`: for a server reached by an address its
    /// certificate does not carry. Pair it with
    /// [`verify_connection`](ConfigBuilder::verify_connection) to check
    /// the name some other way. With `verify_peer(false)` nothing is
    /// checked, whatever this says.
    pub fn verify_hostname(mut self, on: bool) -> Self {
        self.s.verify_hostname = Some(on);
        self
    }

    /// A check of the finished handshake of your own (Go's
    /// `VerifyConnection`), on clients and servers, run on every
    /// handshake, resumed ones too, after OpenSSL's checks and
    /// [`verify_peer_certificate`](ConfigBuilder::verify_peer_certificate),
    /// with the negotiated [`ConnectionState`] (version, ALPN, SNI, the
    /// peer's certificates, whether the session was resumed, a stapled
    /// OCSP response). `Err(msg)` fails the handshake with an `Error::Tls`
    /// whose message holds `msg`. It runs on the thread driving the
    /// handshake, with the connection's engine unlocked and no lock of the
    /// `Config` or a `Listener` held (see `conn.rs`, "Locks"); a panic in
    /// it fails that handshake (the message says so), never the process.
    ///
    /// ```no_run
    /// let config = tls::Config::builder()
    ///     .alpn_protocols(["h2"])
    ///     .verify_connection(|state: &tls::ConnectionState| match state.alpn_protocol.as_deref() {
    ///         Some("h2") => Ok(()),
    ///         _ => Err("this service speaks only h2".to_string()),
    ///     })
    ///     .build()?;
    /// # Ok::<(), tls::ConfigError>(())
    /// ```
    pub fn verify_connection(
        mut self,
        check: impl Fn(&ConnectionState) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.s.connection_hook = Some(Arc::new(check));
        self
    }

    /// How many servers a client keeps a session for, to resume with
    /// (default 64, as Go's and Reseau.jl's caches). Sessions are filed by
    /// server name, or by address when there is none, so dials to one
    /// service through several addresses resume each other's sessions; the
    /// least recently used server is forgotten first. 0 keeps nothing.
    pub fn session_cache_capacity(mut self, servers: usize) -> Self {
        self.s.session_cache_capacity = servers;
        self
    }

    /// The keys a server seals and opens session tickets with (Go's
    /// `SetSessionTicketKeys`): the first seals new tickets, every one opens
    /// them. Servers of one fleet that share keys resume each other's
    /// sessions; to rotate, put a new key first and keep the old ones after
    /// it for as long as their tickets should be honoured (see
    /// [`Config::set_session_ticket_keys`] to do it live). Without keys, a
    /// server makes its own, a new one every 24 hours, each honoured for 7
    /// days, as Go's does. Keys are secrets: never printed, wiped from
    /// memory when dropped. An empty list is a `ConfigError` at `build`.
    pub fn session_ticket_keys(mut self, keys: Vec<[u8; 32]>) -> Self {
        self.s.ticket_keys = Some(TicketSecrets(keys));
        self
    }

    /// Whether a server issues session tickets and resumes sessions
    /// (default `true`); off, as Go's `SessionTicketsDisabled`, every
    /// handshake with it is a full one. On, a TLS 1.3 server sends one
    /// ticket after each handshake, as Go's does (OpenSSL's own default
    /// is two).
    pub fn session_tickets(mut self, on: bool) -> Self {
        self.s.session_tickets = on;
        self
    }

    /// The key-exchange groups offered (client) or accepted (server), in
    /// preference order, by OpenSSL's names: `"X25519"`, `"P-256"`,
    /// `"P-384"`, `"P-521"`, `"X448"`. Go's `CurvePreferences`. Checked at
    /// `build`; default: OpenSSL's.
    pub fn curve_preferences(mut self, groups: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.s.curves = Some(groups.into_iter().map(Into::into).collect());
        self
    }

    /// The TLS 1.2 cipher suites, by OpenSSL's names
    /// (`"ECDHE-RSA-AES128-GCM-SHA256"`), in preference order; Go's
    /// `CipherSuites`. Checked at `build`; default: Go's list (ECDHE with
    /// AES-GCM or ChaCha20-Poly1305, then ECDHE CBC-SHA1).
    pub fn cipher_suites(mut self, suites: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.s.cipher_suites = Some(suites.into_iter().map(Into::into).collect());
        self
    }

    /// The TLS 1.3 cipher suites, by their RFC names
    /// (`"TLS_AES_128_GCM_SHA256"`), in preference order. Checked at
    /// `build`; default: Go's, AES-128-GCM first where the CPU has AES
    /// instructions and ChaCha20-Poly1305 first where it has not.
    pub fn tls13_cipher_suites(mut self, suites: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.s.tls13_cipher_suites = Some(suites.into_iter().map(Into::into).collect());
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

    /// Check the settings against each other, load and check the
    /// credentials (files are read here; a missing file, bad PEM, an
    /// encrypted key without its password, or a key that does not match its
    /// certificate is a `ConfigError` naming the file), check the curve and
    /// cipher lists, and build the `Config`.
    pub fn build(self) -> Result<Config, ConfigError> {
        let mut s = self.s;
        let secrets = s.ticket_keys.take().map(|mut t| std::mem::take(&mut t.0));
        if secrets.as_ref().is_some_and(Vec::is_empty) {
            return Err(ConfigError(NO_TICKET_KEYS.into()));
        }
        match (&s.cert, &s.key) {
            (Some(_), None) => {
                return Err(ConfigError(
                    "a certificate (cert_file or cert_pem) is set but no key_file or key_pem".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError("a key (key_file or key_pem) is set but no cert_file or cert_pem".into()));
            }
            _ => {}
        }
        if let Some(max) = s.max_version
            && max < s.min_version
        {
            return Err(ConfigError(format!("min_version {} is above max_version {max}", s.min_version)));
        }
        for p in &s.alpn {
            if p.is_empty() || p.len() > 255 {
                return Err(ConfigError(format!("ALPN protocol names must be 1 to 255 bytes, got {p:?}")));
            }
        }
        if s.server_name.as_deref() == Some("") {
            return Err(ConfigError("server_name is empty".into()));
        }
        let contexts = Contexts::load(&s, secrets)?;
        Ok(Config { inner: Arc::new(Inner { settings: s, contexts }) })
    }
}

impl Config {
    /// Start building a configuration.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// Replace the session ticket keys, live, for every connection and
    /// listener of this config (its clones included): the first key seals
    /// tickets issued from now on, and every key opens them (see
    /// [`ConfigBuilder::session_ticket_keys`]). From then on the keys are
    /// the ones given, never rotated by the server. The keys given are
    /// wiped; an empty list is an error and changes nothing.
    ///
    /// A daily rotation across a fleet, every server running the same:
    ///
    /// ```no_run
    /// # fn fetch_keys() -> Vec<[u8; 32]> { vec![[0; 32]] }
    /// # let config = tls::Config::builder().build()?;
    /// // The newest key first; the last seven days' after it.
    /// config.set_session_ticket_keys(fetch_keys())?;
    /// # Ok::<(), tls::ConfigError>(())
    /// ```
    pub fn set_session_ticket_keys(&self, keys: Vec<[u8; 32]>) -> Result<(), ConfigError> {
        let mut keys = TicketSecrets(keys);
        if keys.0.is_empty() {
            return Err(ConfigError(NO_TICKET_KEYS.into()));
        }
        self.inner.contexts.tickets.set(std::mem::take(&mut keys.0));
        Ok(())
    }

    /// The configured server name, if any.
    pub fn server_name(&self) -> Option<&str> {
        self.inner.settings.server_name.as_deref()
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.inner.settings
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config").field("settings", &self.inner.settings).finish_non_exhaustive()
    }
}

const NO_TICKET_KEYS: &str = "session_ticket_keys is empty: give at least one key";

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
    fn files_are_checked_at_build() {
        let e = Config::builder().cert_file("/nonexistent/c.pem").key_file("/nonexistent/k.pem").build().unwrap_err();
        assert_eq!(e.0, "cert_file /nonexistent/c.pem does not exist");
        let e = Config::builder().ca_file("/nonexistent/ca.pem").build().unwrap_err();
        assert_eq!(e.0, "ca_file /nonexistent/ca.pem does not exist");
        let e = Config::builder().cert_pem("junk").key_pem("junk").build().unwrap_err();
        assert_eq!(e.0, "cert_pem holds no PEM certificate");
        let e = Config::builder().build().unwrap().server_ctx().err().expect("no certificate");
        assert!(e.0.contains("cert_file"), "{e}");
    }

    #[test]
    fn lists_are_checked_at_build() {
        let e = Config::builder().curve_preferences(["X25519", "P-257"]).build().unwrap_err();
        assert!(e.0.contains("curve_preferences") && e.0.contains("P-257"), "{e}");
        let e = Config::builder().cipher_suites(["ECDHE-RSA-AES128-GCM-SHA256", "NOPE"]).build().unwrap_err();
        assert!(e.0.contains("cipher_suites") && e.0.contains("NOPE"), "{e}");
        let e = Config::builder().tls13_cipher_suites(["TLS_AES_128_GCM_SHA256", "TLS_NOPE"]).build().unwrap_err();
        assert!(e.0.contains("tls13_cipher_suites") && e.0.contains("TLS_NOPE"), "{e}");
        assert!(Config::builder().cipher_suites(Vec::<String>::new()).build().is_err());
        assert!(Config::builder().cipher_suites(["A:B"]).build().is_err());
        let ok = Config::builder()
            .curve_preferences(["X25519", "P-256", "P-384"])
            .cipher_suites(["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-CHACHA20-POLY1305"])
            .tls13_cipher_suites(["TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_256_GCM_SHA384"])
            .build();
        assert!(ok.is_ok(), "{ok:?}");
    }
}
