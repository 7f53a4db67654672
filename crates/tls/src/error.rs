//! TLS errors.

use std::fmt;
use std::io;
use std::time::Duration;

use tcp::{Closed, DeadlineExceeded};

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
    /// Whether this is a timeout of any kind.
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

impl From<Error> for io::Error {
    /// Keeps the kind: deadline expiry stays `TimedOut` (with
    /// [`DeadlineExceeded`] inside), a closed connection carries [`Closed`].
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(io) => io,
            Error::Tls(TlsError { cause: Some(c), .. }) if DeadlineExceeded::is(&c) || Closed::is(&c) => c,
            Error::Dial(op) => op.into(),
            Error::Config(_) => io::Error::new(io::ErrorKind::InvalidInput, e),
            Error::HandshakeTimeout(_) => io::Error::new(io::ErrorKind::TimedOut, e),
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
#[derive(Debug)]
pub struct TlsError {
    /// The operation: `"handshake"`, `"read"`, `"write"`, `"close_write"`.
    pub op: &'static str,
    /// `SSL_get_error`'s code, or 0 when the failure was not OpenSSL's.
    pub code: i32,
    /// OpenSSL's error queue (and the certificate verification result), or
    /// a description of the failure.
    pub message: String,
    /// The transport error behind it, if any.
    pub cause: Option<io::Error>,
}

impl TlsError {
    pub(crate) fn new(op: &'static str, message: impl Into<String>) -> TlsError {
        TlsError { op, code: 0, message: message.into(), cause: None }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tls {} failed", self.op)?;
        if self.code != 0 {
            write!(f, " (code={})", self.code)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(c) = &self.cause {
            write!(f, " [{c}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_ref().map(|c| c as _)
    }
}
