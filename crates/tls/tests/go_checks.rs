//! Where reseau checks as Go does: host names (DNS SANs only, whole-label
//! wildcards), ALPN without overlap (`no_application_protocol`, but for an
//! `http/1.1` client reaching an `h2` server), `close_write` bounded at
//! 5 s, and the client session cache (keyed by server name, an LRU). Peers:
//! `openssl s_server`, `openssl s_client`, and our own ends.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use support::{PATIENCE, SServer, client_builder, dial, pki, s_client, serve, serve_one, server_builder, soon};

/// `openssl s_server` with a certificate issued now by the test CA:
/// subject `subject`, extensions `ext`.
fn s_server_with(name: &str, subject: &str, ext: &str) -> SServer {
    let (cert, key) = pki().issue(name, subject, ext);
    SServer::start(&["-cert", cert.to_str().unwrap(), "-key", key.to_str().unwrap()])
}

/// Dial `addr` verifying `name`: the verification error's code and text,
/// or `None` when the handshake worked.
fn verify_as(addr: SocketAddr, name: &str) -> Option<(i32, String)> {
    match dial(addr, &client_builder().server_name(name).build().unwrap()) {
        Ok(c) => {
            assert!(c.connection_state().handshake_complete);
            None
        }
        Err(tls::Error::Tls(e)) => {
            let v = e.verify_error().unwrap_or_else(|| panic!("{name}: not a verification failure: {e}"));
            Some((v.code, v.message.clone()))
        }
        Err(e) => panic!("{name}: {e:?}"),
    }
}

#[test]
fn a_certificate_naming_the_host_only_in_its_cn_is_refused() {
    let s = s_server_with("cn-only", "/CN=localhost", "extendedKeyUsage=serverAuth\n");
    let (code, message) = verify_as(s.addr, "localhost").expect("a CN-only certificate must be refused");
    assert_eq!(code, tls::VerifyError::HOSTNAME_MISMATCH);
    assert!(message.contains("not valid for any names"), "{message}");
    // Control: a certificate with the DNS SAN, from the same CA.
    let s = SServer::start(&[]);
    assert_eq!(verify_as(s.addr, "localhost"), None);
}

#[test]
fn a_partial_wildcard_is_refused() {
    let s = s_server_with(
        "partial-wildcard",
        "/CN=partial wildcard",
        "subjectAltName=DNS:f*.example.com\nextendedKeyUsage=serverAuth\n",
    );
    let (code, _) = verify_as(s.addr, "foo.example.com").expect("f*.example.com must not match foo.example.com");
    assert_eq!(code, tls::VerifyError::HOSTNAME_MISMATCH);
}

#[test]
fn a_wildcard_matches_one_whole_label_and_never_two() {
    let s =
        s_server_with("wildcard", "/CN=wildcard", "subjectAltName=DNS:*.example.com\nextendedKeyUsage=serverAuth\n");
    assert_eq!(verify_as(s.addr, "foo.example.com"), None, "*.example.com matches foo.example.com");
    for name in ["a.foo.example.com", "example.com", "foo.example.org"] {
        let (code, _) = verify_as(s.addr, name).unwrap_or_else(|| panic!("*.example.com must not match {name}"));
        assert_eq!(code, tls::VerifyError::HOSTNAME_MISMATCH, "{name}");
    }
}

/// SNI selection among a server's certificates follows the same rules: a
/// partial wildcard is never chosen.
#[test]
fn sni_selection_ignores_partial_wildcards_and_cns() {
    let (partial, partial_key) = pki().issue(
        "sni-partial",
        "/CN=foo.example.com",
        "subjectAltName=DNS:f*.example.com\nextendedKeyUsage=serverAuth\n",
    );
    let cfg = server_builder().add_certificate_files(&partial, &partial_key).build().unwrap();
    let (addr, server) = serve_one(&cfg, |c| {
        let _ = c.handshake();
        c.connection_state()
    });
    let client = client_builder().server_name("foo.example.com").verify_peer(false).build().unwrap();
    let c = dial(addr, &client).unwrap();
    assert_eq!(c.connection_state().peer_certificates[0], pki().der("server"), "the default pair, not f*.example.com");
    drop(c);
    server.join().unwrap();
}

/// `openssl s_client -alpn offered` to `addr`; its output, stdout and
/// stderr together.
fn s_client_alpn(addr: SocketAddr, offered: &str) -> String {
    s_client(addr, &["-servername", "localhost", "-alpn", offered])
}

/// The reason OpenSSL gave for a failed handshake.
fn handshake_reason(r: Result<(), tls::Error>) -> i32 {
    match r {
        Err(tls::Error::Tls(e)) => e.reason().unwrap_or_else(|| panic!("no OpenSSL reason: {e}")).reason,
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

/// OpenSSL's `SSL_R_NO_APPLICATION_PROTOCOL` and the alert's reason.
const NO_APPLICATION_PROTOCOL: i32 = 235;
const ALERT_NO_APPLICATION_PROTOCOL: i32 = 1120;

#[test]
fn alpn_without_overlap_fails_with_no_application_protocol() {
    let server_cfg = server_builder().alpn_protocols(["h2"]).build().unwrap();
    // Our client.
    let (addr, server) = serve_one(&server_cfg, |c| c.handshake());
    let client = client_builder().alpn_protocols(["spdy/3", "foo"]).build().unwrap();
    let conn = tls::client(tcp::connect_addr(addr).unwrap(), &client).unwrap();
    conn.set_deadline(Some(soon())).unwrap();
    assert_eq!(handshake_reason(conn.handshake()), ALERT_NO_APPLICATION_PROTOCOL, "the client reads the alert");
    assert_eq!(handshake_reason(server.join().unwrap()), NO_APPLICATION_PROTOCOL);
    // openssl s_client.
    let (addr, server) = serve_one(&server_cfg, |c| c.handshake());
    let out = s_client_alpn(addr, "foo");
    assert!(out.contains("no application protocol"), "s_client should read the alert: {out}");
    assert_eq!(handshake_reason(server.join().unwrap()), NO_APPLICATION_PROTOCOL);
    // Control: an overlap is chosen by the server's preference.
    let (addr, server) = serve_one(&server_cfg, |c| c.handshake().map(|()| c.connection_state().alpn_protocol));
    let out = s_client_alpn(addr, "foo,h2");
    assert!(out.contains("ALPN protocol: h2"), "{out}");
    assert_eq!(server.join().unwrap().unwrap().as_deref(), Some("h2"));
}

#[test]
fn an_http11_client_reaches_an_h2_server_without_alpn() {
    let server_cfg = server_builder().alpn_protocols(["h2"]).build().unwrap();
    let (addr, server) = serve_one(&server_cfg, |c| c.handshake().map(|()| c.connection_state().alpn_protocol));
    let client = client_builder().alpn_protocols(["http/1.1"]).build().unwrap();
    let c = dial(addr, &client).expect("Go's exception: http/1.1 to an h2 server goes on");
    assert_eq!(c.connection_state().alpn_protocol, None);
    assert_eq!(server.join().unwrap().unwrap(), None);
    let (addr, server) = serve_one(&server_cfg, |c| c.handshake().map(|()| c.connection_state().alpn_protocol));
    let out = s_client_alpn(addr, "http/1.1");
    assert!(out.contains("No ALPN negotiated"), "{out}");
    assert_eq!(server.join().unwrap().unwrap(), None);
    // A server without ALPN, or a client without, goes on as before.
    let (addr, server) = serve_one(&support::server_config(), |c| c.handshake());
    assert_eq!(dial(addr, &client).unwrap().connection_state().alpn_protocol, None);
    server.join().unwrap().unwrap();
}

/// `close_write` gives up after 5 s on a peer that reads nothing, as
/// `close` does, whatever the write deadline (here: none).
#[test]
fn close_write_is_bounded_against_a_peer_that_does_not_read() {
    let l = support::listener(&support::server_config());
    support::small_rcvbuf(l.net_listener());
    let addr = l.local_addr().unwrap();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let c = l.accept().unwrap();
        c.set_deadline(Some(soon())).unwrap();
        c.handshake().unwrap();
        // Read nothing until the client is done.
        let _ = stop_rx.recv_timeout(PATIENCE * 2);
        drop(c);
    });
    let c = dial(addr, &support::client_config()).unwrap();
    support::small_sndbuf(c.net_conn());
    c.set_deadline(None).unwrap();
    // Fill the socket and the engine's queue without blocking (a blocking
    // write that timed out would break the write side instead).
    let chunk = vec![7u8; 64 * 1024];
    let mut cx = Context::from_waker(Waker::noop());
    let filled_by = Instant::now() + PATIENCE;
    loop {
        match c.poll_write(&mut cx, &chunk) {
            Poll::Ready(Ok(_)) => {}
            Poll::Ready(Err(e)) => panic!("filling the socket: {e}"),
            Poll::Pending => break,
        }
        assert!(Instant::now() < filled_by, "the socket never filled");
    }
    let start = Instant::now();
    let e = c.close_write().expect_err("close_notify cannot reach a peer that does not read");
    let took = start.elapsed();
    assert!(e.is_timeout(), "{e}");
    assert!(took >= Duration::from_millis(4900), "gave up early, after {took:?}");
    assert!(took < Duration::from_secs(8), "gave up late, after {took:?}");
    stop_tx.send(()).unwrap();
    server.join().unwrap();
}

/// A server that sends "hi" on each of `n` connections (so a TLS 1.3
/// client reads its ticket) and reports whether each resumed.
fn resumption_server(l: tls::Listener, n: usize) -> std::thread::JoinHandle<Vec<bool>> {
    std::thread::spawn(move || {
        (0..n)
            .map(|_| {
                let mut c = l.accept().expect("accept");
                c.set_deadline(Some(soon())).unwrap();
                c.write_all(b"hi").unwrap();
                let mut rest = Vec::new();
                let _ = c.read_to_end(&mut rest);
                c.connection_state().session_resumed
            })
            .collect()
    })
}

/// One exchange with `c`: read "hi", close; whether it resumed.
fn talk(c: io::Result<tls::Conn>) -> bool {
    let mut c = c.unwrap();
    c.set_deadline(Some(soon())).unwrap();
    let mut b = [0u8; 2];
    c.read_exact(&mut b).unwrap();
    let resumed = c.connection_state().session_resumed;
    c.close_write().unwrap();
    resumed
}

/// Two servers of one fleet (here: one `Config`, so one ticket key) at two
/// addresses: a client resumes on the second the session it got from the
/// first, the cache being keyed by server name, not address.
#[test]
fn sessions_resume_across_the_addresses_of_one_server_name() {
    let cfg = support::server_config();
    let (a, b) = (support::listener(&cfg), support::listener(&cfg));
    let (addr_a, addr_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let (sa, sb) = (resumption_server(a, 2), resumption_server(b, 2));
    let client = support::client_config();
    let dial = |addr| dial(addr, &client).map_err(io::Error::from);
    let seen = [talk(dial(addr_a)), talk(dial(addr_b)), talk(dial(addr_a)), talk(dial(addr_b))];
    assert_eq!(seen, [false, true, true, true], "one name, one cache entry, whatever the address");
    assert_eq!(sa.join().unwrap(), [false, true]);
    assert_eq!(sb.join().unwrap(), [true, true]);
}

/// The cache keeps `session_cache_capacity` servers and forgets the least
/// recently used one first.
#[test]
fn the_session_cache_is_an_lru_of_the_configured_capacity() {
    let (cert, key) =
        pki().issue("abc", "/CN=abc", "subjectAltName=DNS:a.test,DNS:b.test,DNS:c.test\nextendedKeyUsage=serverAuth\n");
    let server_cfg = support::server_builder().cert_file(cert).key_file(key).build().unwrap();
    let l = support::listener(&server_cfg);
    let port = l.local_addr().unwrap().port();
    let order = ["a", "b", "a", "c", "b", "c"];
    let server = resumption_server(l, order.len());
    let loopback = [std::net::IpAddr::from([127, 0, 0, 1])];
    let names =
        tcp::resolve::StaticResolver::new().host("a.test", loopback).host("b.test", loopback).host("c.test", loopback);
    let client = tls::Config::builder()
        .ca_file(pki().path("ca.pem"))
        .session_cache_capacity(2)
        .handshake_timeout(PATIENCE)
        .build()
        .unwrap();
    let dialer = tls::Dialer::new(tcp::Dialer::new().resolver(Arc::new(names)), client);
    let seen: Vec<bool> =
        order.iter().map(|n| talk(dialer.connect(&format!("{n}.test:{port}")).map_err(io::Error::from))).collect();
    // a, b: new; a: resumed (and now the newest); c: new, b forgotten;
    // b: new, a forgotten; c: resumed.
    assert_eq!(seen, [false, false, true, false, false, true]);
    assert_eq!(server.join().unwrap(), seen);
}

/// Capacity 0 keeps nothing.
#[test]
fn a_session_cache_of_capacity_zero_keeps_nothing() {
    let (addr, server) = serve(&support::server_config(), 2, |_, mut c| {
        c.write_all(b"hi").unwrap();
        let _ = c.read_to_end(&mut Vec::new());
        c.connection_state().session_resumed
    });
    let client = client_builder().session_cache_capacity(0).build().unwrap();
    let seen = [talk(dial(addr, &client).map_err(io::Error::from)), talk(dial(addr, &client).map_err(io::Error::from))];
    assert_eq!(seen, [false, false]);
    assert_eq!(server.join().unwrap(), [false, false]);
}
