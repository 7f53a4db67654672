//! Peer verification (CA, host name, IP SANs, expiry, verification off),
//! version bounds, and the OpenSSL error queue across failures; our client
//! against our server.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::thread::JoinHandle;

use support::{client_builder, dial, pki, serve, serve_one, server_builder, server_builder_with, server_config};
use tls::Version;

/// A server that handshakes and, if that works, echoes four bytes; it
/// returns its handshake result and connection state.
fn echo_server(cfg: &tls::Config) -> (SocketAddr, JoinHandle<Result<tls::ConnectionState, tls::Error>>) {
    serve_one(cfg, |c| {
        c.handshake()?;
        echo4(&c);
        Ok(c.connection_state())
    })
}

fn echo4(c: &tls::Conn) {
    let mut buf = [0u8; 4];
    let mut c = c;
    c.read_exact(&mut buf).unwrap();
    c.write_all(&buf).unwrap();
}

fn ping(c: &tls::Conn) {
    let mut c = c;
    c.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
}

/// The error is `Error::Tls` from the handshake whose message mentions
/// `what` (case-insensitively).
fn assert_tls_error(r: Result<tls::Conn, tls::Error>, what: &str) -> tls::TlsError {
    match r {
        Err(tls::Error::Tls(e)) => {
            assert_eq!(e.op, "handshake");
            assert!(e.message.to_lowercase().contains(what), "the error should mention {what:?}: {e}");
            e
        }
        Err(e) => panic!("expected Error::Tls mentioning {what:?}, got {e:?}"),
        Ok(c) => {
            panic!("expected Error::Tls mentioning {what:?}, but the handshake worked: {:?}", c.connection_state())
        }
    }
}

#[test]
fn wrong_ca_fails_verification() {
    let (addr, server) = echo_server(&server_config());
    let cfg = client_builder().ca_file(pki().path("ca2.pem")).build().unwrap();
    let e = assert_tls_error(dial(addr, &cfg), "verif");
    assert!(e.code != 0, "an OpenSSL failure carries SSL_get_error's code: {e}");
    assert!(server.join().unwrap().is_err(), "the server sees the client's alert");
}

#[test]
fn wrong_host_name_fails_and_the_right_one_works() {
    let cfg = server_builder_with("other").build().unwrap();
    let (addr, server) = echo_server(&cfg);
    // The certificate names other.test; we dial as localhost.
    assert_tls_error(dial(addr, &support::client_config()), "hostname mismatch");
    assert!(server.join().unwrap().is_err());
    // Control: the same server, verified as other.test.
    let (addr, server) = echo_server(&cfg);
    let c = dial(addr, &client_builder().server_name("other.test").build().unwrap()).unwrap();
    ping(&c);
    assert_eq!(server.join().unwrap().unwrap().server_name.as_deref(), Some("other.test"));
}

#[test]
fn expired_certificate_fails() {
    let (addr, server) = echo_server(&server_builder_with("expired").build().unwrap());
    assert_tls_error(dial(addr, &support::client_config()), "expired");
    assert!(server.join().unwrap().is_err());
}

#[test]
fn verification_off_accepts_any_server() {
    // An untrusted CA, the wrong name, an expired certificate: all fine.
    for (cert, ca, name) in
        [("server", "ca2.pem", "localhost"), ("other", "ca.pem", "localhost"), ("expired", "ca2.pem", "x.invalid")]
    {
        let (addr, server) = echo_server(&server_builder_with(cert).build().unwrap());
        let cfg = tls::Config::builder().ca_file(pki().path(ca)).server_name(name).verify_peer(false).build().unwrap();
        let c = dial(addr, &cfg).unwrap_or_else(|e| panic!("{cert}: verify_peer(false) should accept: {e}"));
        assert_eq!(c.connection_state().peer_certificates.first(), Some(&pki().der(cert)));
        ping(&c);
        server.join().unwrap().unwrap();
    }
    // And it needs no server name at all.
    let (addr, server) = echo_server(&server_config());
    let tcp = tcp::connect_addr(addr).unwrap();
    let c = tls::client(tcp, &tls::Config::builder().verify_peer(false).build().unwrap()).unwrap();
    c.handshake().unwrap();
    ping(&c);
    assert_eq!(c.connection_state().server_name, None, "no name, no SNI");
    server.join().unwrap().unwrap();
}

#[test]
fn ip_literal_dial_checks_the_ip_san_and_sends_no_sni() {
    let cfg = tls::Config::builder().ca_file(pki().path("ca.pem")).build().unwrap();
    assert_eq!(cfg.server_name(), None);
    // By SocketAddr: the name to verify is the IP.
    let (addr, server) = echo_server(&server_config());
    let c = tls::connect_addr(addr, &cfg).expect("the certificate carries IP:127.0.0.1");
    ping(&c);
    assert_eq!(c.connection_state().server_name, None, "the client sent no SNI");
    let st = server.join().unwrap().unwrap();
    assert_eq!(st.server_name, None, "the server received no SNI");
    // By string: the same.
    let (addr, server) = echo_server(&server_config());
    let c = tls::connect(&addr.to_string(), &cfg).expect("dial \"127.0.0.1:port\"");
    ping(&c);
    assert_eq!(server.join().unwrap().unwrap().server_name, None);
    // A certificate without that IP fails.
    let (addr, server) = echo_server(&server_builder_with("other").build().unwrap());
    assert_tls_error(tls::connect_addr(addr, &cfg), "ip address mismatch");
    assert!(server.join().unwrap().is_err());
}

#[test]
fn host_name_dial_sends_sni() {
    let cfg = tls::Config::builder().ca_file(pki().path("ca.pem")).build().unwrap();
    let (addr, server) = echo_server(&server_config());
    let c = tls::connect(&format!("localhost:{}", addr.port()), &cfg).unwrap();
    ping(&c);
    assert_eq!(c.connection_state().server_name.as_deref(), Some("localhost"));
    assert_eq!(server.join().unwrap().unwrap().server_name.as_deref(), Some("localhost"));
}

#[test]
fn client_max_tls12_negotiates_tls12() {
    let (addr, server) = echo_server(&server_config());
    let c = dial(addr, &client_builder().max_version(Version::Tls12).build().unwrap()).unwrap();
    ping(&c);
    let st = c.connection_state();
    assert_eq!(st.version, Some(Version::Tls12));
    let cipher = st.cipher_suite.unwrap();
    assert!(!cipher.starts_with("TLS_"), "not a TLS 1.3 suite: {cipher}");
    assert_eq!(server.join().unwrap().unwrap().version, Some(Version::Tls12));
    // Unbounded, the same pair negotiates TLS 1.3.
    let (addr, server) = echo_server(&server_config());
    let c = dial(addr, &support::client_config()).unwrap();
    ping(&c);
    assert_eq!(c.connection_state().version, Some(Version::Tls13));
    server.join().unwrap().unwrap();
}

#[test]
fn server_min_tls13_rejects_client_max_tls12() {
    let (addr, server) = echo_server(&server_builder().min_version(Version::Tls13).build().unwrap());
    let r = dial(addr, &client_builder().max_version(Version::Tls12).build().unwrap());
    assert_tls_error(r, "protocol version");
    match server.join().unwrap() {
        Err(tls::Error::Tls(e)) => assert!(e.message.contains("unsupported protocol"), "{e}"),
        other => panic!("the server should fail with Error::Tls: {other:?}"),
    }
    // The bounds meet: TLS 1.3.
    let (addr, server) = echo_server(&server_builder().min_version(Version::Tls13).build().unwrap());
    let c = dial(addr, &client_builder().min_version(Version::Tls13).build().unwrap()).unwrap();
    ping(&c);
    assert_eq!(server.join().unwrap().unwrap().version, Some(Version::Tls13));
}

#[test]
fn error_queue_does_not_leak_into_the_next_call() {
    // One server thread and one client thread each see failures and then a
    // good connection; OpenSSL's error queue is per thread, so a leak would
    // show up in the later calls on the same thread.
    let (addr, server) = serve(&server_config(), 4, |i, c| {
        let r = c.handshake();
        if i < 3 {
            assert!(r.is_err(), "connection {i} should fail");
            return None;
        }
        r.expect("the good handshake after three failed ones");
        echo4(&c);
        let mut rest = Vec::new();
        (&c).read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        Some(c.connection_state())
    });
    let bad = client_builder().ca_file(pki().path("ca2.pem")).build().unwrap();
    let first = assert_tls_error(dial(addr, &bad), "verif");
    let second = assert_tls_error(dial(addr, &bad), "verif");
    // Nothing left over from the first failure is reported again.
    assert_eq!(first.message, second.message);
    // A client configuration OpenSSL rejects (a CA file that is not PEM)...
    let garbage = pki().scratch("not-a-ca.pem");
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();
    match client_builder().ca_file(&garbage).build() {
        Err(e) => assert!(e.0.contains("not-a-ca.pem"), "{e}"), // refused at build
        Ok(broken) => match dial(addr, &broken) {
            Err(tls::Error::Config(_)) => {} // refused before dialing
            other => panic!("a CA file without certificates is a configuration error: {other:?}"),
        },
    }
    // ...then one that fails the handshake again.
    let third = assert_tls_error(dial(addr, &bad), "verif");
    assert_eq!(first.message, third.message);
    let good = dial(addr, &support::client_config()).expect("a good handshake on the same thread");
    let st = good.connection_state();
    assert!(st.handshake_complete);
    assert_eq!(st.version, Some(Version::Tls13));
    assert_eq!(st.peer_certificates.first(), Some(&pki().der("server")));
    ping(&good);
    good.close_write().unwrap();
    let states = server.join().unwrap();
    let st = states[3].as_ref().unwrap();
    assert!(st.handshake_complete);
    assert!(st.peer_certificates.is_empty());
}
