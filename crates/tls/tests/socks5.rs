//! TLS through a SOCKS5 proxy: a `tls::Dialer` over a `tcp::Dialer` that
//! dials through `microsocks` (started by the test; the test fails if it
//! is not installed). The target's name goes to the proxy unresolved and
//! is the name sent as SNI and verified.

use std::io::{Read, Write};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tcp::resolve::StaticResolver;
use testkit::socks5::{Localhost, Microsocks};

const SLACK: Duration = Duration::from_secs(10);

#[test]
fn tls_to_the_target_through_the_proxy() {
    let cert = testkit::certs::localhost();
    let proxy = Microsocks::start();
    let target = Localhost::bind();
    let port = target.port;
    let server_config = tls::Config::builder().cert_file(&cert.cert).key_file(&cert.key).build().unwrap();
    let server = thread::spawn(move || {
        let tcp = tcp::Conn::from_std(target.accept()).unwrap();
        let mut conn = tls::server(tcp, &server_config).unwrap();
        conn.handshake().unwrap();
        let sni = conn.connection_state().server_name;
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).unwrap();
        conn.write_all(&buf).unwrap();
        (sni, buf)
    });

    // The tcp dialer's own resolver knows no names: "localhost" can only
    // have been resolved by the proxy.
    let tcp_dialer = tcp::Dialer::new()
        .resolver(Arc::new(StaticResolver::new()))
        .timeout(SLACK)
        .socks5_proxy(&proxy.addr.to_string(), None);
    let client_config = tls::Config::builder().ca_file(&cert.cert).build().unwrap();
    let dialer = tls::Dialer::new(tcp_dialer, client_config);
    let mut conn = dialer.connect(&format!("localhost:{port}")).unwrap();
    assert!(conn.connection_state().handshake_complete);
    // The connection runs to the proxy; TLS runs to the target.
    assert_eq!(conn.remote_addr().unwrap(), proxy.addr);
    conn.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    let (sni, got) = server.join().unwrap();
    assert_eq!(sni.as_deref(), Some("localhost"), "the target's name is the SNI");
    assert_eq!(&got, b"ping");
}

#[test]
fn a_name_the_certificate_lacks_fails_verification_through_the_proxy() {
    // The certificate names localhost, 127.0.0.1 and ::1: verifying it
    // for another name fails, end to end through the proxy.
    let cert = testkit::certs::localhost();
    let proxy = Microsocks::start();
    let target = tcp::listen("127.0.0.1:0").unwrap();
    let addr = target.local_addr().unwrap();
    let server_config = tls::Config::builder().cert_file(&cert.cert).key_file(&cert.key).build().unwrap();
    let server = thread::spawn(move || {
        target.set_deadline(Some(std::time::Instant::now() + SLACK)).unwrap();
        let tcp = target.accept().unwrap();
        // The client gives up; the server's handshake fails with it.
        tls::server(tcp, &server_config).unwrap().handshake().is_err()
    });
    let tcp_dialer = tcp::Dialer::new().timeout(SLACK).socks5_proxy(&proxy.addr.to_string(), None);
    let client_config = tls::Config::builder().ca_file(&cert.cert).server_name("other.test").build().unwrap();
    let err = tls::Dialer::new(tcp_dialer, client_config).connect(&addr.to_string()).unwrap_err();
    assert!(matches!(err, tls::Error::Tls(_)), "{err:?}");
    assert!(server.join().unwrap(), "the server's handshake failed too");
}
