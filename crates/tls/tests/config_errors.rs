//! Configuration errors: inconsistent settings and unusable files at
//! `ConfigBuilder::build`, and what depends on the role at `client`,
//! `server`, `listen`, `Listener::bind`/`from_tcp` and `connect`, always as
//! `Error::Config` and always before any byte goes over the network.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;

use support::pki;
use tls::{ClientAuth, Version};

fn missing(name: &str) -> PathBuf {
    pki().path(&format!("no-such-dir/{name}"))
}

#[track_caller]
fn assert_config<T: std::fmt::Debug>(r: Result<T, tls::Error>, what: &str, mentions: &str) {
    match r {
        Err(tls::Error::Config(e)) => {
            assert!(e.0.contains(mentions), "{what}: the error should mention {mentions:?}: {e}")
        }
        other => panic!("{what}: expected Error::Config, got {other:?}"),
    }
}

/// A plain TCP listener that tells whether anyone connected to it.
struct Witness {
    l: TcpListener,
}

impl Witness {
    fn new() -> Witness {
        Witness { l: TcpListener::bind("127.0.0.1:0").unwrap() }
    }

    fn addr(&self) -> SocketAddr {
        self.l.local_addr().unwrap()
    }

    /// Panics if anyone but our own probe connected since the last call:
    /// the probe connects after the call under test returned, so any
    /// connection that call made is queued ahead of it.
    #[track_caller]
    fn assert_untouched(&self, what: &str) {
        let probe = TcpStream::connect(self.addr()).unwrap();
        let (_s, from) = self.l.accept().unwrap();
        assert_eq!(from, probe.local_addr().unwrap(), "{what}: a connection was made before the config error");
        self.l.set_nonblocking(true).unwrap();
        let next = self.l.accept();
        self.l.set_nonblocking(false).unwrap();
        assert!(matches!(&next, Err(e) if e.kind() == ErrorKind::WouldBlock), "{what}: stray connection {next:?}");
    }
}

/// A connected `tcp::Conn` and the plain socket at its other end.
fn tcp_pair() -> (tcp::Conn, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = tcp::connect_addr(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(support::PATIENCE)).unwrap();
    (c, s)
}

/// The peer read end of stream without a single byte.
#[track_caller]
fn assert_nothing_sent(mut peer: TcpStream, what: &str) {
    let mut got = Vec::new();
    peer.read_to_end(&mut got).unwrap();
    assert!(got.is_empty(), "{what}: {} bytes were sent before the config error", got.len());
}

#[test]
fn builder_rejects_inconsistent_settings() {
    let b = tls::Config::builder;
    let e = b().cert_file(pki().path("server.pem")).build().unwrap_err();
    assert!(e.0.contains("key_file"), "{e}");
    let e = b().key_file(pki().path("server.key")).build().unwrap_err();
    assert!(e.0.contains("cert_file"), "{e}");
    let e = b().min_version(Version::Tls13).max_version(Version::Tls12).build().unwrap_err();
    assert!(e.0.contains("min_version"), "{e}");
    let e = b().alpn_protocols(["h2", ""]).build().unwrap_err();
    assert!(e.0.contains("ALPN"), "{e}");
    assert!(b().alpn_protocols(["x".repeat(256)]).build().is_err(), "ALPN names are at most 255 bytes");
    // The edges that are fine.
    assert!(b().alpn_protocols(["x".repeat(255)]).build().is_ok());
    assert!(b().min_version(Version::Tls13).max_version(Version::Tls13).build().is_ok());
    assert!(b().min_version(Version::Tls12).max_version(Version::Tls12).build().is_ok());
    // Files are read at build, and the error names the one missing.
    let e = b().cert_file(missing("c.pem")).key_file(missing("k.pem")).ca_file(missing("ca.pem")).build().unwrap_err();
    assert!(e.0.contains("cert_file") && e.0.contains("c.pem") && e.0.contains("does not exist"), "{e}");
}

/// A config that fails with a `ConfigError` mentioning `mentions`, at
/// `build` or (through `uses`) at first use.
#[track_caller]
fn check_config(what: &str, b: tls::ConfigBuilder, mentions: &str, uses: impl FnOnce(&str, &tls::Config, &str)) {
    match b.build() {
        Err(e) => assert!(e.0.contains(mentions), "{what}: the error should mention {mentions:?}: {e}"),
        Ok(cfg) => uses(what, &cfg, mentions),
    }
}

/// Every way to use a server config, each expected to fail with a config
/// error mentioning `mentions` (or to work, with `None`).
fn check_server_config(what: &str, cfg: &tls::Config, mentions: Option<&str>) {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (conn, peer) = tcp_pair();
    match mentions {
        Some(m) => {
            assert_config(tls::listen("127.0.0.1:0", cfg), &format!("{what}: listen"), m);
            assert_config(tls::Listener::bind(addr, cfg), &format!("{what}: Listener::bind"), m);
            let l = tcp::Listener::bind(addr).unwrap();
            assert_config(tls::Listener::from_tcp(l, cfg), &format!("{what}: Listener::from_tcp"), m);
            assert_config(tls::server(conn, cfg), &format!("{what}: server"), m);
            assert_nothing_sent(peer, what);
        }
        None => {
            tls::listen("127.0.0.1:0", cfg).unwrap();
            tls::Listener::bind(addr, cfg).unwrap();
            tls::Listener::from_tcp(tcp::Listener::bind(addr).unwrap(), cfg).unwrap();
            let c = tls::server(conn, cfg).unwrap();
            assert!(!c.connection_state().handshake_complete, "lazy: no handshake yet");
        }
    }
}

#[test]
fn server_config_errors() {
    let pki = pki();
    let server = support::server_builder;
    let cases: Vec<(&str, tls::ConfigBuilder, &str)> = vec![
        ("no certificate", tls::Config::builder(), "cert_file"),
        ("missing cert file", server().cert_file(missing("server.pem")), "cert_file"),
        ("missing key file", server().key_file(missing("server.key")), "key_file"),
        ("missing client_ca_file", server().client_ca_file(missing("ca.pem")), "client_ca_file"),
        ("missing ca_file", server().ca_file(missing("ca.pem")), "ca_file"),
        (
            "VerifyClientCertIfGiven without client_ca_file",
            server().client_auth(ClientAuth::VerifyClientCertIfGiven),
            "client_ca_file",
        ),
        (
            "RequireAndVerifyClientCert without client_ca_file",
            server().client_auth(ClientAuth::RequireAndVerifyClientCert),
            "client_ca_file",
        ),
    ];
    for (what, b, mentions) in cases {
        check_config(what, b, mentions, |what, cfg, m| check_server_config(what, cfg, Some(m)));
    }
    // Controls: the unverified modes need no client CA; with one, all work.
    for mode in [ClientAuth::NoClientCert, ClientAuth::RequestClientCert, ClientAuth::RequireAnyClientCert] {
        check_server_config(&format!("{mode:?}"), &server().client_auth(mode).build().unwrap(), None);
    }
    for mode in [ClientAuth::VerifyClientCertIfGiven, ClientAuth::RequireAndVerifyClientCert] {
        let cfg = server().client_auth(mode).client_ca_file(pki.path("ca.pem")).build().unwrap();
        check_server_config(&format!("{mode:?} with client_ca_file"), &cfg, None);
    }
}

/// Every way to use a client config, each expected to fail with a config
/// error mentioning `mentions` and to make no connection.
fn check_client_config(what: &str, cfg: &tls::Config, mentions: &str) {
    let w = Witness::new();
    assert_config(tls::connect_addr(w.addr(), cfg), &format!("{what}: connect_addr"), mentions);
    w.assert_untouched(&format!("{what}: connect_addr"));
    assert_config(tls::connect(&w.addr().to_string(), cfg), &format!("{what}: connect"), mentions);
    w.assert_untouched(&format!("{what}: connect"));
    let d = tls::Dialer::new(tcp::Dialer::new(), cfg.clone());
    assert_config(d.connect_addr(w.addr()), &format!("{what}: Dialer::connect_addr"), mentions);
    w.assert_untouched(&format!("{what}: Dialer::connect_addr"));
    let (conn, peer) = tcp_pair();
    assert_config(tls::client(conn, cfg), &format!("{what}: client"), mentions);
    assert_nothing_sent(peer, what);
}

#[test]
fn client_config_errors_come_before_dialing() {
    let pki = pki();
    let client = support::client_builder;
    let cases: Vec<(&str, tls::ConfigBuilder, &str)> = vec![
        ("missing ca_file", client().ca_file(missing("ca.pem")), "ca_file"),
        ("missing ca_file, verification off", client().ca_file(missing("ca.pem")).verify_peer(false), "ca_file"),
        (
            "missing client cert file",
            client().cert_file(missing("client.pem")).key_file(pki.path("client.key")),
            "cert_file",
        ),
        (
            "missing client key file",
            client().cert_file(pki.path("client.pem")).key_file(missing("client.key")),
            "key_file",
        ),
    ];
    for (what, b, mentions) in cases {
        check_config(what, b, mentions, check_client_config);
    }
}

#[test]
fn verifying_client_needs_a_server_name() {
    let cfg = tls::Config::builder().ca_file(pki().path("ca.pem")).build().unwrap();
    // Wrapping a connection: nothing to derive a name from.
    let (conn, peer) = tcp_pair();
    assert_config(tls::client(conn, &cfg), "client without server_name", "server name");
    assert_nothing_sent(peer, "client without server_name");
    // Dialing ":port": the host part is empty.
    let w = Witness::new();
    assert_config(tls::connect(&format!(":{}", w.addr().port()), &cfg), "connect \":port\"", "server name");
    w.assert_untouched("connect \":port\"");
    // An empty name is no name.
    assert!(tls::Config::builder().server_name("").build().is_err());
    // Controls: a name, or no verification, and wrapping works (lazily).
    let (conn, _peer) = tcp_pair();
    let named = tls::Config::builder().ca_file(pki().path("ca.pem")).server_name("localhost").build().unwrap();
    assert!(tls::client(conn, &named).is_ok());
    let (conn, _peer) = tcp_pair();
    assert!(tls::client(conn, &tls::Config::builder().verify_peer(false).build().unwrap()).is_ok());
}
