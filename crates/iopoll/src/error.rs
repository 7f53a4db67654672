//! The two errors every blocking wait can end in.

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
    /// Whether `err` carries a `DeadlineExceeded`.
    pub fn is(err: &io::Error) -> bool {
        err.get_ref().is_some_and(|e| e.is::<DeadlineExceeded>())
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
