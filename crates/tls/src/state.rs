//! [`ConnectionState`]: what a handshake negotiated. Its own file, so the
//! sans-I/O engine that fills it in and the drivers that hand it out both
//! depend on it, and not on each other.

use crate::config::Version;

/// The state of a connection, as
/// [`Conn::connection_state`](crate::Conn::connection_state) reports it.
/// Its `Debug` summarises the peer's certificates (see `certificate.rs`).
/// Fields may be added in later versions: read them, or make one from
/// `ConnectionState::default()` and set the fields you need.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionState {
    /// Whether the handshake has completed.
    pub handshake_complete: bool,
    /// The negotiated version.
    pub version: Option<Version>,
    /// The negotiated ALPN protocol.
    pub alpn_protocol: Option<String>,
    /// The cipher suite, by OpenSSL's name (`TLS_AES_256_GCM_SHA384`).
    pub cipher_suite: Option<String>,
    /// The key-exchange group, by OpenSSL's name (`X25519`, `secp256r1`,
    /// `X25519MLKEM768`).
    pub group: Option<String>,
    /// SNI sent (client) or received (server).
    pub server_name: Option<String>,
    /// The peer's certificates, DER encoded, leaf first.
    pub peer_certificates: Vec<Vec<u8>>,
    /// Whether the handshake resumed an earlier session.
    pub session_resumed: bool,
    /// The OCSP response the server stapled (clients; DER), if it sent one.
    /// A client always asks for one, as Go's does; checking it (its
    /// signature, its freshness, the certificate's status) is the
    /// application's business, in
    /// [`verify_connection`](crate::ConfigBuilder::verify_connection).
    pub ocsp_response: Option<Vec<u8>>,
}
