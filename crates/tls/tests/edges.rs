//! Edges a user of Go's crypto/tls expects: a fully qualified dial target,
//! close_notify after an idle deadline, and a timeout error that names the
//! deadline that fired.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use support::{PATIENCE, client_builder, pki, server_config};

#[test]
fn a_trailing_dot_in_the_target_is_left_out_of_sni_and_the_name_check() {
    let listener = support::listener(&server_config());
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut c = listener.accept().unwrap();
        c.write_all(b"x").unwrap();
        c.connection_state().server_name
    });
    // No server_name override: the name comes from the address. (The
    // system resolver here knows "localhost" only from /etc/hosts, without
    // the dot; a static table stands in for DNS.)
    let client = tls::Config::builder().ca_file(pki().path("ca.pem")).handshake_timeout(PATIENCE).build().unwrap();
    let resolver = tcp::resolve::StaticResolver::new().host("localhost.", ["127.0.0.1".parse().unwrap()]);
    let dialer = tls::Dialer::new(tcp::Dialer::new().resolver(std::sync::Arc::new(resolver)), client);
    let mut c = dialer.connect(&format!("localhost.:{port}")).expect("verified as localhost");
    c.read_exact(&mut [0; 1]).unwrap();
    assert_eq!(c.connection_state().server_name.as_deref(), Some("localhost"));
    assert_eq!(server.join().unwrap().as_deref(), Some("localhost"), "SNI as the server saw it");
}

/// A connection closed after its write deadline passed (an idle timeout)
/// still sends close_notify, in a window of its own: the peer reads a clean
/// end of stream, not a truncation.
#[test]
fn close_after_an_idle_deadline_still_sends_close_notify() {
    let listener = support::listener(&server_config());
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let mut c = listener.accept().unwrap();
        c.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut all = Vec::new();
        let r = c.read_to_end(&mut all);
        (r.map(|_| all), c)
    });
    let c = support::dial(addr, &client_builder().build().unwrap()).unwrap();
    (&c).write_all(b"bye").unwrap();
    c.set_deadline(Some(Instant::now())).unwrap(); // the idle deadline has passed
    c.close().unwrap();
    let (r, _c) = server.join().unwrap();
    assert_eq!(r.expect("a clean end of stream after close_notify"), b"bye");
}

/// The dial's deadline firing during the handshake is an i/o timeout, not
/// the configured handshake timeout (which did not fire).
#[test]
fn a_dial_deadline_during_the_handshake_is_not_reported_as_the_handshake_timeout() {
    // Accepts TCP and never answers the ClientHello.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let config = client_builder().handshake_timeout(Duration::from_secs(10)).build().unwrap();
    let dialer = tls::Dialer::new(tcp::Dialer::new().timeout(Duration::from_millis(200)), config);
    let start = Instant::now();
    let err = dialer.connect_addr(addr).expect_err("a silent server");
    assert!(start.elapsed() < Duration::from_secs(5), "the dial's 200 ms deadline did not bound it");
    assert!(err.is_timeout(), "{err:?}");
    assert!(!matches!(err, tls::Error::HandshakeTimeout(_)), "reported the handshake timeout that did not fire: {err}");
    drop(silent);
}
