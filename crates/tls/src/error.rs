//! TLS errors.

use std::fmt;
use std::io;
use std::time::Duration;

use tcp::{Closed, DeadlineExceeded, Expired, IsTimeout};

/// Why a TLS operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable; found before any network I/O.
    #[error(transparent)]
    Config(ConfigError),
    /// OpenSSL refused (bad certificate, protocol error, ...) or the
    /// transport failed during a TLS operation.
    #[error(transparent)]
    Tls(TlsError),
    /// The configured handshake timeout passed.
    #[error("tls handshake timed out after {0:?}")]
    HandshakeTimeout(Duration),
    /// The peer closed the connection cleanly during the handshake.
    #[error("tls: peer closed the connection during the handshake")]
    Eof,
    /// Resolving or dialing failed.
    #[error(transparent)]
    Dial(tcp::OpError),
    /// A transport failure outside OpenSSL (e.g. an accept deadline).
    #[error(transparent)]
    Io(io::Error),
}

impl Error {
    /// Whether this is a timeout of any kind: the handshake timeout, a
    /// deadline passing during the handshake or a read or write, a dial or
    /// lookup timeout, an accept deadline. The same answer as
    /// [`IsTimeout::is_timeout`] on the `io::Error` this converts into.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::HandshakeTimeout(_) => true,
            Error::Tls(t) => t.cause.as_ref().is_some_and(|c| c.kind() == io::ErrorKind::TimedOut),
            Error::Dial(op) => op.is_timeout(),
            Error::Io(e) => e.kind() == io::ErrorKind::TimedOut,
            Error::Config(_) | Error::Eof => false,
        }
    }
}

impl IsTimeout for Error {
    fn is_timeout(&self) -> bool {
        Error::is_timeout(self)
    }
}

impl From<Error> for io::Error {
    /// Keeps the kind: every timeout stays `TimedOut` with
    /// [`DeadlineExceeded::is`] true (the handshake timeout and a dial
    /// timeout inside an [`Expired`]), a closed connection carries
    /// [`Closed`], an OpenSSL failure is `InvalidData`.
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(io) => io,
            Error::Tls(TlsError { cause: Some(c), .. }) if DeadlineExceeded::is(&c) || Closed::is(&c) => c,
            Error::Dial(op) => op.into(),
            Error::Config(_) => io::Error::new(io::ErrorKind::InvalidInput, e),
            Error::HandshakeTimeout(_) => Expired::new(e).into(),
            Error::Eof => io::Error::new(io::ErrorKind::UnexpectedEof, e),
            Error::Tls(ref t) => {
                let kind = t.cause.as_ref().map_or(io::ErrorKind::InvalidData, |c| c.kind());
                io::Error::new(kind, e)
            }
        }
    }
}

/// An unusable configuration: files missing or unreadable, a server
/// without a certificate, inconsistent settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tls config error: {0}")]
pub struct ConfigError(pub String);

/// A failed TLS operation.
///
/// Match on what OpenSSL said with [`reason`](TlsError::reason) (library
/// and reason codes, stable across OpenSSL versions, unlike the text) and
/// [`verify_error`](TlsError::verify_error) (why the peer's certificate was
/// refused); on the transport's failure with `cause`.
#[derive(Debug)]
pub struct TlsError {
    /// The operation: `"handshake"`, `"read"`, `"write"`, `"close_write"`,
    /// `"export_keying_material"`.
    pub op: &'static str,
    /// `SSL_get_error`'s code, or 0 when the failure was not OpenSSL's.
    pub code: i32,
    /// OpenSSL's error queue (and the certificate verification result), or
    /// a description of the failure.
    pub message: String,
    /// The error behind it: the transport's `io::Error` (a reset, a
    /// deadline, `Closed`), or, for a failure OpenSSL reported, OpenSSL's
    /// own (kind `InvalidData`), which `reason` and `verify_error` read.
    pub cause: Option<io::Error>,
}

impl TlsError {
    pub(crate) fn new(op: &'static str, message: impl Into<String>) -> TlsError {
        TlsError { op, code: 0, message: message.into(), cause: None }
    }

    fn openssl(&self) -> Option<&OpensslError> {
        self.cause.as_ref()?.get_ref()?.downcast_ref::<OpensslError>()
    }

    /// OpenSSL's reason for the failure: the last (outermost) entry of its
    /// error queue, if OpenSSL reported one.
    ///
    /// ```no_run
    /// # let config = tls::Config::builder().build()?;
    /// match tls::connect("example.com:443", &config) {
    ///     Err(tls::Error::Tls(e)) if e.reason().is_some_and(|r| r.is_ssl(tls::Reason::CERTIFICATE_VERIFY_FAILED)) => {
    ///         eprintln!("untrusted server: {:?}", e.verify_error());
    ///     }
    ///     other => { other?; }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reason(&self) -> Option<&Reason> {
        self.reasons().last()
    }

    /// Every entry of OpenSSL's error queue for this failure, oldest first.
    pub fn reasons(&self) -> &[Reason] {
        self.openssl().map_or(&[], |o| &o.reasons)
    }

    /// Why the peer's certificate was refused, if that is why it failed.
    pub fn verify_error(&self) -> Option<&VerifyError> {
        self.openssl()?.verify.as_ref()
    }
}

impl IsTimeout for TlsError {
    fn is_timeout(&self) -> bool {
        self.cause.as_ref().is_some_and(IsTimeout::is_timeout)
    }
}

/// `tls handshake failed (code=1): <OpenSSL's words>` or `tls read failed:
/// connection reset by peer`: the cause's words are part of the message,
/// so [`source`](std::error::Error::source) goes on from what lies behind
/// the cause, and a chain printed link by link says nothing twice.
impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tls {} failed", self.op)?;
        if self.code != 0 {
            write!(f, " (code={})", self.code)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        // OpenSSL's own error is what `message` already says.
        if let Some(c) = self.cause.as_ref().filter(|_| self.openssl().is_none()) {
            write!(f, ": {c}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_ref()?.source()
    }
}

/// One entry of OpenSSL's error queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    /// The library that raised it (`ERR_GET_LIB`): 20 is libssl
    /// ([`Reason::LIB_SSL`]), 11 X.509, 9 PEM, ...
    pub library: i32,
    /// The library's reason code (`ERR_GET_REASON`), e.g. 134,
    /// [`Reason::CERTIFICATE_VERIFY_FAILED`].
    pub reason: i32,
    /// OpenSSL's text: `error:0A000086:SSL routines::certificate verify
    /// failed` (it varies between OpenSSL versions; match the codes).
    pub text: String,
}

impl Reason {
    /// `ERR_LIB_SSL`: libssl, the TLS protocol itself.
    pub const LIB_SSL: i32 = 20;
    /// `SSL_R_CERTIFICATE_VERIFY_FAILED`: we refused the peer's certificate.
    pub const CERTIFICATE_VERIFY_FAILED: i32 = 134;
    /// `SSL_R_NO_SHARED_CIPHER`: no cipher suite in common.
    pub const NO_SHARED_CIPHER: i32 = 193;
    /// `SSL_R_UNSUPPORTED_PROTOCOL`: no protocol version in common.
    pub const UNSUPPORTED_PROTOCOL: i32 = 258;
    /// `SSL_R_WRONG_VERSION_NUMBER`: the peer does not speak TLS (often
    /// plain HTTP on a TLS port).
    pub const WRONG_VERSION_NUMBER: i32 = 267;
    /// `SSL_R_TLSV1_ALERT_UNKNOWN_CA`: the peer refused our certificate's
    /// issuer.
    pub const TLSV1_ALERT_UNKNOWN_CA: i32 = 1048;

    /// Whether this is libssl's reason `reason`.
    pub fn is_ssl(&self, reason: i32) -> bool {
        self.library == Reason::LIB_SSL && self.reason == reason
    }
}

/// Why certificate verification refused the peer's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyError {
    /// OpenSSL's `X509_V_ERR_*` code (see the constants).
    pub code: i32,
    /// In words: OpenSSL's, and for a name mismatch both names, as Go says
    /// them: `hostname mismatch: certificate is valid for localhost,
    /// svc.test, not example.org`.
    pub message: String,
}

impl VerifyError {
    /// `X509_V_ERR_CERT_HAS_EXPIRED`.
    pub const CERT_HAS_EXPIRED: i32 = 10;
    /// `X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT`: a self-signed leaf.
    pub const DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
    /// `X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN`: an untrusted root in the chain.
    pub const SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
    /// `X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY`: issued by a CA we do
    /// not trust.
    pub const UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
    /// `X509_V_ERR_HOSTNAME_MISMATCH`: not valid for the server name.
    pub const HOSTNAME_MISMATCH: i32 = 62;
    /// `X509_V_ERR_IP_ADDRESS_MISMATCH`: not valid for the IP address.
    pub const IP_ADDRESS_MISMATCH: i32 = 64;
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// OpenSSL's side of a failure, typed: carried as a `TlsError`'s cause.
#[derive(Debug)]
pub(crate) struct OpensslError {
    pub(crate) reasons: Vec<Reason>,
    pub(crate) verify: Option<VerifyError>,
    /// The same, as `TlsError::message` has it.
    pub(crate) text: String,
}

impl fmt::Display for OpensslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for OpensslError {}

impl From<OpensslError> for io::Error {
    fn from(e: OpensslError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}
