//! Dial and listen errors, shaped like Go's `net.OpError`.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// A dial, listen or resolve operation failed.
///
/// Its Display reads like Go's: `dial tcp 127.0.0.1:1: connection refused`.
///
/// ```
/// let err = tcp::connect("127.0.0.1").unwrap_err(); // no port
/// assert_eq!(err.op, "dial");
/// assert!(matches!(err.err, tcp::Error::Address(_)));
/// assert_eq!(err.to_string(), "dial tcp: address 127.0.0.1: missing port in address");
/// ```
#[derive(Debug)]
pub struct OpError {
    /// The operation: `"dial"`, `"listen"` or `"resolve"`.
    pub op: &'static str,
    /// The network: `"tcp"`, `"tcp4"` or `"tcp6"`.
    pub net: String,
    /// The local address bound before the failure, if any.
    pub local_addr: Option<SocketAddr>,
    /// The remote (dial) or local (listen) address the operation was for.
    pub addr: Option<String>,
    /// What went wrong.
    pub err: Error,
}

impl OpError {
    pub(crate) fn new(op: &'static str, net: impl Into<String>, addr: Option<String>, err: Error) -> OpError {
        OpError { op, net: net.into(), local_addr: None, addr, err }
    }

    /// Whether the operation ran out of time.
    pub fn is_timeout(&self) -> bool {
        self.err.is_timeout()
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.op)?;
        if !self.net.is_empty() {
            write!(f, " {}", self.net)?;
        }
        if let Some(local) = &self.local_addr {
            write!(f, " {local}")?;
        }
        if let Some(addr) = &self.addr {
            f.write_str(if self.local_addr.is_some() { "->" } else { " " })?;
            f.write_str(addr)?;
        }
        write!(f, ": {}", self.err)
    }
}

/// Display already says what `err` says (Go's format), so the source is
/// what lies behind `err`, as `io::Error` does with its inner error: a
/// chain printed link by link (anyhow's `{:#}`) says nothing twice. Match
/// on [`err`](OpError::err) for the kind of failure.
impl std::error::Error for OpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.err.source()
    }
}

impl iopoll::IsTimeout for OpError {
    fn is_timeout(&self) -> bool {
        OpError::is_timeout(self)
    }
}

/// The kind follows `err` (`TimedOut` for a timeout, the OS error's own
/// kind for `Error::Io`, ...) and the `OpError` is inside: `get_ref()`
/// downcasts to it, except for a timeout, whose `OpError` sits in an
/// [`iopoll::Expired`] so that `DeadlineExceeded::is` holds for it as for
/// every other timeout.
impl From<OpError> for io::Error {
    fn from(e: OpError) -> io::Error {
        if e.is_timeout() {
            return iopoll::Expired::new(e).into();
        }
        let kind = match &e.err {
            Error::Address(_) | Error::UnknownNetwork(_) => io::ErrorKind::InvalidInput,
            Error::Lookup(l) if l.is_timeout => io::ErrorKind::TimedOut,
            Error::Lookup(l) if l.is_not_found => io::ErrorKind::NotFound,
            Error::Lookup(_) => io::ErrorKind::Other,
            Error::Timeout => io::ErrorKind::TimedOut,
            Error::Io(io) => io.kind(),
        };
        io::Error::new(kind, e)
    }
}

/// Why a dial, listen or resolve failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address string is malformed.
    #[error(transparent)]
    Address(AddressError),
    /// The network is not `tcp`, `tcp4` or `tcp6`.
    #[error("unknown network {0}")]
    UnknownNetwork(String),
    /// Name resolution failed.
    #[error(transparent)]
    Lookup(LookupError),
    /// The timeout or deadline passed while resolving or dialing.
    #[error("i/o timeout")]
    Timeout,
    /// The system refused: connection refused, unreachable, address in use...
    /// From the last address tried. Display is its text as Go prints it;
    /// the `io::Error` is here rather than behind `source()`, since
    /// Display already says what it says.
    #[error("{}", go_text(.0))]
    Io(io::Error),
}

impl iopoll::IsTimeout for Error {
    fn is_timeout(&self) -> bool {
        Error::is_timeout(self)
    }
}

impl Error {
    /// Whether this is a timeout (of the dial, the lookup, or the socket).
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Timeout => true,
            Error::Lookup(l) => l.is_timeout,
            Error::Io(e) => e.kind() == io::ErrorKind::TimedOut,
            _ => false,
        }
    }
}

/// An OS error as Go prints it: `connection refused`, not
/// `Connection refused (os error 111)`.
fn go_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match (e.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(i)) => &text[..i],
        _ => &text[..],
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A malformed address string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressError {
    /// What is wrong with it, e.g. `missing port in address`.
    pub message: String,
    /// The address as given.
    pub addr: String,
}

impl AddressError {
    pub(crate) fn new(message: impl Into<String>, addr: impl Into<String>) -> AddressError {
        AddressError { message: message.into(), addr: addr.into() }
    }
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.addr.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "address {}: {}", self.addr, self.message)
        }
    }
}

impl std::error::Error for AddressError {}

/// A failed name or service lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupError {
    /// The name looked up.
    pub host: String,
    /// What went wrong, e.g. `no such host`.
    pub message: String,
    /// The name does not exist (as opposed to a failing resolver).
    pub is_not_found: bool,
    /// The lookup ran out of time.
    pub is_timeout: bool,
}

impl LookupError {
    /// The name does not exist.
    pub fn not_found(host: impl Into<String>) -> LookupError {
        LookupError { host: host.into(), message: "no such host".into(), is_not_found: true, is_timeout: false }
    }

    /// The lookup ran out of time.
    pub fn timeout(host: impl Into<String>) -> LookupError {
        LookupError { host: host.into(), message: "i/o timeout".into(), is_not_found: false, is_timeout: true }
    }

    /// Any other failure.
    pub fn other(host: impl Into<String>, message: impl Into<String>) -> LookupError {
        LookupError { host: host.into(), message: message.into(), is_not_found: false, is_timeout: false }
    }
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lookup {}: {}", self.host, self.message)
    }
}

impl std::error::Error for LookupError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_go() {
        let e = OpError::new(
            "dial",
            "tcp",
            Some("127.0.0.1:1".into()),
            Error::Io(io::Error::from_raw_os_error(libc::ECONNREFUSED)),
        );
        assert_eq!(e.to_string(), "dial tcp 127.0.0.1:1: connection refused");
        let mut e = OpError::new("dial", "tcp", Some("[::1]:80".into()), Error::Timeout);
        e.local_addr = Some("[::1]:5000".parse().unwrap());
        assert_eq!(e.to_string(), "dial tcp [::1]:5000->[::1]:80: i/o timeout");
        assert!(e.is_timeout());
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::TimedOut);
        assert!(iopoll::DeadlineExceeded::is(&io), "the io form of a dial timeout");
        assert_eq!(io.to_string(), "dial tcp [::1]:5000->[::1]:80: i/o timeout");
        let op = io.get_ref().and_then(|e| e.downcast_ref::<iopoll::Expired>()).unwrap().operation();
        assert!(op.downcast_ref::<OpError>().is_some_and(OpError::is_timeout));
        let e = OpError::new("dial", "tcp", None, Error::Lookup(LookupError::not_found("nope.invalid")));
        assert_eq!(e.to_string(), "dial tcp: lookup nope.invalid: no such host");
        let e = Error::Address(AddressError::new("missing port in address", "1.2.3.4"));
        assert_eq!(e.to_string(), "address 1.2.3.4: missing port in address");
    }
}
