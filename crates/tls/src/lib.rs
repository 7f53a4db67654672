//! TLS for reseau: OpenSSL `SSL` objects on memory BIOs, with all waiting
//! done by the reactor. The connection types arrive with the TLS work; the
//! error types every layer shares are here already.
pub use tcp::{Closed, DeadlineExceeded};
