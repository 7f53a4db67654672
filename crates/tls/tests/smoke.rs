//! Our client against our server, end to end.

mod support;

use std::io::{Read, Write};

#[test]
fn client_and_server_exchange_data() {
    let pki = support::pki();
    let server_cfg = tls::Config::builder()
        .cert_file(pki.path("server.pem"))
        .key_file(pki.path("server.key"))
        .alpn_protocols(["h2", "http/1.1"])
        .build()
        .unwrap();
    let client_cfg = tls::Config::builder().ca_file(pki.path("ca.pem")).alpn_protocols(["http/1.1"]).build().unwrap();
    let listener = tls::listen("127.0.0.1:0", &server_cfg).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut c = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        c.write_all(&buf).unwrap();
        let st = c.connection_state();
        assert_eq!(st.server_name.as_deref(), Some("localhost"));
        c.close_write().unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    });
    let mut c = tls::connect(&format!("localhost:{port}"), &client_cfg).unwrap();
    let st = c.connection_state();
    assert!(st.handshake_complete);
    assert_eq!(st.version, Some(tls::Version::Tls13));
    assert_eq!(st.alpn_protocol.as_deref(), Some("http/1.1"));
    assert!(!st.peer_certificates.is_empty());
    c.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap(); // server's close_notify
    c.close_write().unwrap();
    server.join().unwrap();
}
