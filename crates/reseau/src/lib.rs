//! reseau: a networking runtime with Go's model on top of a hand-rolled
//! reactor.
//!
//! - [`iopoll`]: the reactor (poller, timing wheel, per-fd poll state).
//! - [`tcp`]: TCP connections and listeners with a blocking facade and
//!   absolute deadlines.
//! - [`tls`]: TLS on OpenSSL memory BIOs, driven by the same reactor.
//! - [`unix`]: Unix domain sockets, with the contract of `tcp`.
//! - [`Connection`]: what TCP, TLS and Unix connections share, for code
//!   over `Box<dyn Connection>`; [`Addr`], the address of either kind.
//! - [`green`]: green threads whose blocking `tcp` and `tls` calls suspend
//!   only themselves.
//!
//! Features, off by default: `tokio` (tokio's `AsyncRead` + `AsyncWrite`
//! for `tcp::Conn`, `unix::Conn`, `tls::Conn` and their `&Conn`),
//! `futures-io` (the `futures` crates' traits for the same), `vendored`
//! (OpenSSL built from source). Without them, every connection still has
//! `poll_*` methods, and `tcp::Dialer::connect_async` and
//! `tls::Dialer::connect_async` dial without blocking, on any executor.
pub use green;
pub use iopoll;
pub use tcp;
pub use tcp::unix;
pub use tcp::{Addr, Connection};
pub use tls;

/// The README's snippets, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// The guide's pages, compiled as doc tests here, where every snippet's
/// `use reseau::…` resolves as in a user's program.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/index.md")]
#[doc = include_str!("../../../docs/embedding.md")]
#[doc = include_str!("../../../docs/green.md")]
#[doc = include_str!("../../../docs/deadlines.md")]
#[doc = include_str!("../../../docs/errors.md")]
#[doc = include_str!("../../../docs/migrating-from-std.md")]
#[doc = include_str!("../../../docs/tcp.md")]
#[doc = include_str!("../../../docs/tls.md")]
#[doc = include_str!("../../../docs/unix.md")]
#[doc = include_str!("../../../docs/resolution.md")]
pub struct GuideDoctests;
