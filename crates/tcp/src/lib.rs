//! TCP on the reseau reactor.
pub use iopoll::{Closed, DeadlineExceeded, Runtime};
