//! std's conveniences on TLS: Display, peer_addr, relative timeouts, TTL,
//! and a listener's `incoming`.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use support::{client_config, server_config};

#[test]
fn display_peer_addr_and_incoming() {
    let listener = std::sync::Arc::new(support::listener(&server_config()));
    let addr = listener.local_addr().unwrap();
    assert_eq!(listener.to_string(), format!("tls::Listener({addr}, active)"));
    let l = listener.clone();
    let server = std::thread::spawn(move || {
        let mut served = 0;
        for conn in l.incoming() {
            let mut conn = conn.unwrap();
            let mut buf = [0; 4];
            conn.read_exact(&mut buf).unwrap();
            conn.write_all(&buf).unwrap();
            served += 1;
        }
        served
    });
    for _ in 0..2 {
        let mut c = support::dial(addr, &client_config()).unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
        let shown = c.to_string();
        assert!(
            shown.starts_with(&format!("tls::Conn({} => {addr}, client, TLSv1.", c.local_addr().unwrap())),
            "{shown}"
        );
        assert!(shown.ends_with(", open)"), "{shown}");
        c.set_timeout(Some(testkit::PATIENCE)).unwrap();
        c.set_ttl(11).unwrap();
        assert_eq!(c.ttl().unwrap(), 11);
        c.write_all(b"ping").unwrap();
        let mut buf = [0; 4];
        c.read_exact(&mut buf).unwrap();
        c.close().unwrap();
        assert!(c.to_string().ends_with(", closed)"), "{c}");
    }
    // `incoming` ends once the listener is closed.
    listener.close().unwrap();
    assert_eq!(testkit::within(testkit::PATIENCE, "incoming to end", move || server.join().unwrap()), 2);
    assert!(listener.to_string().ends_with(", closed)"));
}

#[test]
fn a_fresh_conn_shows_its_pending_handshake() {
    let listener = support::listener(&server_config());
    let tcp = tcp::connect_addr(listener.local_addr().unwrap()).unwrap();
    let c = tls::client(tcp, &client_config()).unwrap();
    assert!(c.to_string().contains("client, handshake pending, open"), "{c}");
    c.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    assert!(c.net_conn().read_deadline().is_some());
    c.close().unwrap();
    assert!(c.to_string().contains("client, no handshake, closed"), "{c}");
}
