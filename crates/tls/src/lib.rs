//! TLS for reseau, on raw OpenSSL `SSL` objects with memory BIOs.
//!
//! OpenSSL never touches the socket: it reads ciphertext from one memory
//! BIO and writes to another, and the connection moves bytes between those
//! and its [`tcp::Conn`], so every wait (for data, for buffer space, for a
//! deadline, for a close) is the reactor's, exactly as for plain TCP.
//!
//! - [`Config`] / [`ConfigBuilder`]: certificates and keys (files or PEM
//!   in memory, several chosen by SNI, or chosen per handshake by a
//!   `certificate_resolver` as [`CertifiedKey`]s from a [`ClientHello`]),
//!   CAs, client auth ([`ClientAuth`]), `verify_peer_certificate` and
//!   `verify_connection` hooks, ALPN, versions ([`Version`]), curves and
//!   cipher suites, handshake timeout, session ticket keys (shared by a
//!   fleet, rotated live) and the client session cache; files are checked
//!   at `build`.
//! - [`connect`], [`Dialer`]: resolve, dial and handshake.
//! - [`client`], [`server`]: wrap an existing `tcp::Conn` (lazy handshake).
//! - [`listen`], [`Listener`]: accept TLS connections; its config can be
//!   replaced while it runs ([`Listener::set_config`]).
//! - [`Conn`]: `Read` + `Write` (one reader and one writer at once),
//!   deadlines, `close_write` (close_notify), [`ConnectionState`] (its
//!   peer certificates readable as [`Certificate`]s, a stapled OCSP
//!   response), [`Conn::export_keying_material`].
//! - [`Conn::poll_handshake`], [`Conn::poll_read`], [`Conn::poll_write`],
//!   [`Conn::poll_flush`], [`Listener::poll_accept`]: the same operations
//!   for an event loop or executor, on the same connection;
//!   [`Conn::poll_close_write`] (close_notify) and
//!   [`Dialer::connect_async`] (resolve, connect, handshake) never block
//!   the polling thread either. Features `tokio` and `futures-io` (off by
//!   default) add those crates' `AsyncRead` + `AsyncWrite` for `Conn` and
//!   `&Conn`; shutdown is close_notify.
//! - [`Error`], [`TlsError`] (with OpenSSL's [`Reason`] and the
//!   [`VerifyError`]), [`ConfigError`], and [`IsTimeout`], the one timeout
//!   question: `docs/errors.md` in the repository has them all.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! let config = tls::Config::builder().alpn_protocols(["http/1.1"]).build()?;
//! let mut conn = tls::connect("example.com:443", &config)?;
//! conn.write_all(b"HEAD / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")?;
//! let mut reply = String::new();
//! conn.read_to_string(&mut reply)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The error enums keep their public fields, as the contract says.
#![allow(clippy::result_large_err)]

mod certificate;
mod config;
mod conn;
mod connection;
mod context;
mod dial;
mod engine;
mod error;
mod ffi;
// The fuzz targets' door to the engine: not part of the product's API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod listener;
mod resolver;
mod state;

use std::net::SocketAddr;

pub use certificate::Certificate;
pub use config::{ClientAuth, Config, ConfigBuilder, Version};
pub use conn::Conn;
pub use dial::Dialer;
pub use error::{ConfigError, Error, Reason, TlsError, VerifyError};
pub use ffi::version as openssl_version;
pub use listener::Listener;
pub use resolver::{CertifiedKey, ClientHello};
pub use state::ConnectionState;
pub use tcp::{Closed, DeadlineExceeded, Expired, IsTimeout};

/// Wrap `tcp` as a TLS client. The handshake runs on first use. The server
/// name to verify comes from `config.server_name`.
pub fn client(tcp: tcp::Conn, config: &Config) -> Result<Conn, Error> {
    Conn::new_client(tcp, config, None, None)
}

/// Wrap `tcp` as a TLS server. The handshake runs on first use.
pub fn server(tcp: tcp::Conn, config: &Config) -> Result<Conn, Error> {
    Conn::new_server(tcp, config)
}

/// Resolve and dial `address` (`"host:port"`) and complete the handshake.
pub fn connect(address: &str, config: &Config) -> Result<Conn, Error> {
    Dialer::new(tcp::Dialer::new(), config.clone()).connect(address)
}

/// Dial `addr` and complete the handshake.
pub fn connect_addr(addr: SocketAddr, config: &Config) -> Result<Conn, Error> {
    Dialer::new(tcp::Dialer::new(), config.clone()).connect_addr(addr)
}

/// Check the server configuration, then listen on `address` (`"host:port"`).
pub fn listen(address: &str, config: &Config) -> Result<Listener, Error> {
    config.server_ctx().map_err(Error::Config)?;
    let l = tcp::listen(address).map_err(Error::Dial)?;
    Listener::from_tcp(l, config)
}
