//! The two errors every blocking wait can end in, and the one timeout
//! question.

use std::error::Error;
use std::fmt;
use std::io;

/// A deadline passed before the operation could complete.
///
/// It reaches callers inside an [`io::Error`] of kind
/// [`io::ErrorKind::TimedOut`]; `get_ref()` downcasts to this type.
///
/// ```
/// use std::io;
/// let err: io::Error = iopoll::DeadlineExceeded.into();
/// assert_eq!(err.kind(), io::ErrorKind::TimedOut);
/// assert!(iopoll::DeadlineExceeded::is(&err));
/// assert_eq!(err.to_string(), "i/o timeout");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, thiserror::Error)]
#[error("i/o timeout")]
pub struct DeadlineExceeded;

impl DeadlineExceeded {
    /// Whether `err` carries a `DeadlineExceeded`, itself or as an
    /// [`Expired`] operation (the io form of a dial that timed out, say).
    pub fn is(err: &io::Error) -> bool {
        err.get_ref().is_some_and(|e| e.is::<DeadlineExceeded>() || e.is::<Expired>())
    }
}

/// An operation that ran out of time, in the words of the operation
/// itself: the io form of an error that says more than "i/o timeout" (a
/// dial's `dial tcp 10.0.0.1:80: i/o timeout`). Its kind is
/// [`io::ErrorKind::TimedOut`], [`DeadlineExceeded::is`] holds for it, and
/// its Display and source are the operation's own.
///
/// ```
/// use std::io;
/// let dial: Box<dyn std::error::Error + Send + Sync> = "dial tcp 10.0.0.1:80: i/o timeout".into();
/// let err: io::Error = iopoll::Expired::new(dial).into();
/// assert_eq!(err.kind(), io::ErrorKind::TimedOut);
/// assert!(iopoll::DeadlineExceeded::is(&err));
/// assert_eq!(err.to_string(), "dial tcp 10.0.0.1:80: i/o timeout");
/// ```
#[derive(Debug)]
pub struct Expired(Box<dyn Error + Send + Sync>);

impl Expired {
    /// `operation` ran out of time.
    pub fn new(operation: impl Into<Box<dyn Error + Send + Sync>>) -> Expired {
        Expired(operation.into())
    }

    /// The operation's own error (downcast it: a `tcp::OpError`, ...).
    pub fn operation(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.0
    }

    /// The operation's own error, by value.
    pub fn into_operation(self) -> Box<dyn Error + Send + Sync> {
        self.0
    }
}

impl fmt::Display for Expired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The operation's Display is ours, so its source is ours too (not the
/// operation, whose words we already print).
impl Error for Expired {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

impl From<Expired> for io::Error {
    fn from(e: Expired) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, e)
    }
}

/// The one timeout question, asked of any of reseau's errors: did it end
/// because time ran out (a deadline, a dial or handshake timeout, a lookup
/// that took too long)? `tcp::OpError`, `tcp::Error` and `tls::Error`
/// answer it, and so does every `io::Error` they convert into.
///
/// ```
/// use iopoll::IsTimeout;
/// use std::io;
/// let err: io::Error = iopoll::DeadlineExceeded.into();
/// assert!(err.is_timeout());
/// assert!(!io::Error::from(io::ErrorKind::ConnectionRefused).is_timeout());
/// ```
pub trait IsTimeout {
    /// Whether time ran out.
    fn is_timeout(&self) -> bool;
}

/// `TimedOut`, whatever carries it: reseau's errors keep that kind when
/// they become `io::Error`s (and the kernel's `ETIMEDOUT` has it too).
impl IsTimeout for io::Error {
    fn is_timeout(&self) -> bool {
        self.kind() == io::ErrorKind::TimedOut
    }
}

impl From<DeadlineExceeded> for io::Error {
    fn from(e: DeadlineExceeded) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, e)
    }
}

/// The descriptor was closed, before or while the operation waited.
///
/// It reaches callers inside an [`io::Error`] of kind
/// [`io::ErrorKind::NotConnected`]; `get_ref()` downcasts to this type.
///
/// ```
/// use std::io;
/// let err: io::Error = iopoll::Closed.into();
/// assert!(iopoll::Closed::is(&err));
/// assert_eq!(err.to_string(), "use of closed network connection");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, thiserror::Error)]
#[error("use of closed network connection")]
pub struct Closed;

impl Closed {
    /// Whether `err` carries a `Closed`.
    pub fn is(err: &io::Error) -> bool {
        err.get_ref().is_some_and(|e| e.is::<Closed>())
    }
}

impl From<Closed> for io::Error {
    fn from(e: Closed) -> io::Error {
        io::Error::new(io::ErrorKind::NotConnected, e)
    }
}

/// The runtime the descriptor waits on was shut down
/// ([`Runtime::shutdown`](crate::Runtime::shutdown)).
///
/// It reaches callers inside an [`io::Error`] of kind
/// [`io::ErrorKind::Other`]; `get_ref()` downcasts to this type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, thiserror::Error)]
#[error("reactor is shut down")]
pub struct ReactorShutdown;

impl ReactorShutdown {
    /// Whether `err` carries a `ReactorShutdown`.
    pub fn is(err: &io::Error) -> bool {
        err.get_ref().is_some_and(|e| e.is::<ReactorShutdown>())
    }
}

impl From<ReactorShutdown> for io::Error {
    fn from(e: ReactorShutdown) -> io::Error {
        io::Error::other(e)
    }
}
