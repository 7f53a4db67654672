//! Certificates chosen at handshake time: [`CertifiedKey`], what a server
//! serves, and [`ClientHello`], what its resolver
//! ([`ConfigBuilder::certificate_resolver`]) sees.
//!
//! [`ConfigBuilder::certificate_resolver`]: crate::ConfigBuilder::certificate_resolver

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::context::{Pem, Secret, key_pair};
use crate::error::ConfigError;
use crate::ffi::{Chosen, HelloInfo, KeyPair};

/// A certificate chain and its private key, parsed and checked to match,
/// ready to serve: what a
/// [`certificate_resolver`](crate::ConfigBuilder::certificate_resolver)
/// returns. Cheap to clone (the parsed chain and key are shared), so a
/// resolver can keep one ready and hand out clones; load a new one to
/// rotate a certificate without restarting (see `docs/tls.md`).
///
/// ```no_run
/// let key = tls::CertifiedKey::from_files("cert.pem", "key.pem")?;
/// let staple = std::fs::read("cert.ocsp.der")?;
/// let key = key.with_ocsp_staple(staple);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CertifiedKey {
    pair: Arc<KeyPair>,
    ocsp: Option<Arc<[u8]>>,
}

/// The names `key_pair` uses in its messages.
const NAMES: [&str; 4] = ["CertifiedKey chain", "CertifiedKey chain", "CertifiedKey key", "CertifiedKey key"];

impl CertifiedKey {
    /// From PEM in memory: the chain (leaf first, then intermediates) and
    /// an unencrypted private key (PKCS#8, PKCS#1 or SEC1). A key that does
    /// not match the leaf, bad PEM or an encrypted key is a `ConfigError`.
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<CertifiedKey, ConfigError> {
        CertifiedKey::load(&Pem::Memory(chain.to_vec()), &Pem::Memory(key.to_vec()), None)
    }

    /// As [`from_pem`](CertifiedKey::from_pem), from files, read now.
    pub fn from_files(chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<CertifiedKey, ConfigError> {
        CertifiedKey::load(&Pem::file(chain), &Pem::file(key), None)
    }

    /// As [`from_pem`](CertifiedKey::from_pem), with a key encrypted under
    /// `password` (PKCS#8 or legacy PEM encryption). The wrong password is
    /// a `ConfigError`; the password is not kept.
    pub fn from_encrypted_pem(chain: &[u8], key: &[u8], password: &str) -> Result<CertifiedKey, ConfigError> {
        let password = Secret(password.to_string());
        CertifiedKey::load(&Pem::Memory(chain.to_vec()), &Pem::Memory(key.to_vec()), Some(&password))
    }

    fn load(chain: &Pem, key: &Pem, password: Option<&Secret>) -> Result<CertifiedKey, ConfigError> {
        let hint = ("use CertifiedKey::from_encrypted_pem", "the password");
        let pair = key_pair(chain, key, password, NAMES, hint)?;
        Ok(CertifiedKey { pair: Arc::new(pair), ocsp: None })
    }

    /// Staple this DER OCSP response (Go's `Certificate.OCSPStaple`) for
    /// clients that ask for one (reseau's always do). It is sent as given:
    /// fetch a fresh one from the CA's responder before the last expires,
    /// and swap in a new `CertifiedKey`.
    pub fn with_ocsp_staple(self, der: Vec<u8>) -> CertifiedKey {
        CertifiedKey { ocsp: Some(der.into()), ..self }
    }

    /// What the connection's handshake installs.
    pub(crate) fn chosen(&self) -> Chosen {
        Chosen { pair: self.pair.share(), ocsp: self.ocsp.as_deref().map(<[u8]>::to_vec) }
    }
}

/// The subject and expiry, never the key.
impl fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertifiedKey")
            .field("subject", &self.pair.leaf().subject())
            .field("chain", &self.pair.chain.len())
            .field("key", &"<redacted>")
            .field("ocsp_staple", &self.ocsp.as_ref().map(|o| format!("<{} bytes>", o.len())))
            .finish()
    }
}

/// What a server knows of a client before it picks a certificate: what
/// a [`certificate_resolver`](crate::ConfigBuilder::certificate_resolver)
/// is given (Go's `ClientHelloInfo`).
pub struct ClientHello<'a> {
    pub(crate) info: &'a HelloInfo,
}

impl ClientHello<'_> {
    /// The host name the client asked for (SNI), if it sent one.
    pub fn server_name(&self) -> Option<&str> {
        self.info.server_name.as_deref()
    }

    /// The ALPN protocols the client offered, in its order.
    pub fn alpn_protocols(&self) -> Vec<String> {
        self.info.alpn.clone()
    }
}

impl fmt::Debug for ClientHello<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientHello")
            .field("server_name", &self.info.server_name)
            .field("alpn_protocols", &self.info.alpn)
            .finish()
    }
}

/// The user's `certificate_resolver`.
pub(crate) type Resolver = Arc<dyn Fn(&ClientHello<'_>) -> Result<Option<CertifiedKey>, String> + Send + Sync>;
