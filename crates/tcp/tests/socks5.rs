//! SOCKS5 against a real proxy: `microsocks`, started by each test on a
//! free loopback port (the tests fail if it is not installed).

#![allow(clippy::result_large_err)]

mod support;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Reserved, accept, assert_carries, ms, sa};
use tcp::resolve::StaticResolver;
use tcp::socks5::{self, Auth, BoundAddr};
use tcp::{DeadlineExceeded, Dialer, Error, OpError};
use testkit::PATIENCE;
use testkit::socks5::{Localhost, Microsocks};

/// The `socks5::Error` a dial through the proxy failed with.
fn socks5_cause(err: &OpError) -> &socks5::Error {
    match &err.err {
        Error::Io(e) => e.get_ref().and_then(|e| e.downcast_ref()).unwrap_or_else(|| panic!("not SOCKS5: {err:?}")),
        other => panic!("not an I/O error: {other:?}"),
    }
}

/// A connection to `proxy` with a deadline a few seconds away.
fn to_proxy(proxy: SocketAddr) -> tcp::Conn {
    let conn = tcp::connect_addr(proxy).unwrap();
    conn.set_deadline(Some(Instant::now() + PATIENCE)).unwrap();
    conn
}

#[test]
fn handshake_without_auth_reaches_an_ip_target() {
    let proxy = Microsocks::start();
    let target = tcp::listen("127.0.0.1:0").unwrap();
    let conn = to_proxy(proxy.addr);
    let bound = socks5::handshake(&conn, &target.local_addr().unwrap().to_string(), None).unwrap();
    assert!(matches!(bound, BoundAddr::Ip(_)), "{bound:?}");
    let mut conn = conn;
    assert_carries(&mut conn, &mut accept(&target));
}

#[test]
fn dialer_goes_through_the_proxy() {
    let proxy = Microsocks::start();
    let target = tcp::listen("127.0.0.1:0").unwrap();
    let target_addr = target.local_addr().unwrap();
    let dialer = Dialer::new().timeout(PATIENCE).socks5_proxy(&proxy.addr.to_string(), None);
    let mut conn = dialer.connect(&target_addr.to_string()).unwrap();
    // The connection is to the proxy; the target sees the proxy's side.
    assert_eq!(conn.remote_addr().unwrap(), proxy.addr);
    let mut server = accept(&target);
    assert_ne!(server.remote_addr().unwrap(), conn.local_addr().unwrap());
    assert_carries(&mut conn, &mut server);
    // connect_addr goes through the proxy as well.
    let mut conn = dialer.connect_addr(target_addr).unwrap();
    assert_eq!(conn.remote_addr().unwrap(), proxy.addr);
    // No deadline is left behind on the connection.
    assert_eq!(conn.read_deadline(), None);
    assert_eq!(conn.write_deadline(), None);
    assert_carries(&mut conn, &mut accept(&target));
}

#[test]
fn target_names_are_resolved_by_the_proxy() {
    let proxy = Microsocks::start();
    let target = Localhost::bind();
    // This dialer's own resolver knows no names at all: only the proxy can
    // have resolved "localhost".
    let dialer = Dialer::new()
        .resolver(Arc::new(StaticResolver::new()))
        .timeout(PATIENCE)
        .socks5_proxy(&proxy.addr.to_string(), None);
    let mut conn = dialer.connect(&format!("localhost:{}", target.port)).unwrap();
    assert_carries(&mut conn, &mut target.accept());
    // Without the proxy the same dialer cannot resolve it.
    let err = Dialer::new().resolver(Arc::new(StaticResolver::new())).connect("localhost:80").unwrap_err();
    assert!(matches!(err.err, Error::Lookup(_)), "{err}");
}

#[test]
fn username_and_password() {
    let proxy = Microsocks::with_auth("alice", "s3cret");
    let target = tcp::listen("127.0.0.1:0").unwrap();
    let to = target.local_addr().unwrap().to_string();

    let good = Auth::new("alice", "s3cret");
    let conn = to_proxy(proxy.addr);
    socks5::handshake(&conn, &to, Some(&good)).unwrap();
    let mut conn = conn;
    assert_carries(&mut conn, &mut accept(&target));
    let mut conn = Dialer::new().socks5_proxy(&proxy.addr.to_string(), Some(good)).connect(&to).unwrap();
    assert_carries(&mut conn, &mut accept(&target));

    // A wrong password: the sub-negotiation fails.
    let conn = to_proxy(proxy.addr);
    let err = socks5::handshake(&conn, &to, Some(&Auth::new("alice", "wrong"))).unwrap_err();
    assert!(matches!(&err, socks5::Error::Authentication(m) if m.contains("rejected")), "{err:?}");
    let err = Dialer::new()
        .socks5_proxy(&proxy.addr.to_string(), Some(Auth::new("alice", "wrong")))
        .connect(&to)
        .unwrap_err();
    assert!(matches!(socks5_cause(&err), socks5::Error::Authentication(_)), "{err:?}");
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::PermissionDenied);

    // No credentials offered: the proxy accepts none of our methods.
    let conn = to_proxy(proxy.addr);
    let err = socks5::handshake(&conn, &to, None).unwrap_err();
    assert!(matches!(&err, socks5::Error::Authentication(m) if m.contains("none of the methods")), "{err:?}");
    assert!(err.to_string().starts_with("socks5: authentication failed: "), "{err}");
}

#[test]
fn refused_target_is_reply_5() {
    let proxy = Microsocks::start();
    let refused = support::retry("a reserved port", || Reserved::bind(sa("127.0.0.1:0")));
    let conn = to_proxy(proxy.addr);
    let err = socks5::handshake(&conn, &refused.addr.to_string(), None).unwrap_err();
    match &err {
        socks5::Error::Reply { code, message } => {
            assert_eq!(*code, 5);
            assert_eq!(message, "connection refused");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.to_string(), "socks5: connection refused (reply 5)");

    let err = Dialer::new().socks5_proxy(&proxy.addr.to_string(), None).connect_addr(refused.addr).unwrap_err();
    assert!(matches!(socks5_cause(&err), socks5::Error::Reply { code: 5, .. }), "{err:?}");
    assert_eq!(err.addr.as_deref(), Some(refused.addr.to_string().as_str()));
    assert_eq!(err.to_string(), format!("dial tcp {}: socks5: connection refused (reply 5)", refused.addr));
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::ConnectionRefused);
}

#[test]
fn silent_proxy_is_bounded_by_deadlines() {
    // A listener that never accepts: the kernel completes the connection
    // (there is room in the backlog), and nobody ever answers on it.
    let silent = tcp::listen("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();

    // The conn's deadline bounds the handshake.
    let conn = tcp::connect_addr(silent_addr).unwrap();
    let start = Instant::now();
    conn.set_deadline(Some(start + ms(50))).unwrap();
    let err = socks5::handshake(&conn, "127.0.0.1:80", None).unwrap_err();
    assert!(start.elapsed() >= ms(50), "timed out early");
    assert!(err.is_timeout(), "{err:?}");
    match &err {
        socks5::Error::Io(e) => {
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            assert!(DeadlineExceeded::is(e), "{e:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.to_string(), "i/o timeout");

    // A dialer's timeout covers dialing the proxy and the exchange.
    let start = Instant::now();
    let err = Dialer::new()
        .timeout(ms(80))
        .socks5_proxy(&silent_addr.to_string(), None)
        .connect("example.test:443")
        .unwrap_err();
    assert!(start.elapsed() >= ms(80), "timed out early");
    assert!(err.is_timeout() && matches!(err.err, Error::Timeout), "{err:?}");
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::TimedOut);
    // So does a deadline.
    let err = Dialer::new()
        .deadline(Instant::now() + ms(50))
        .socks5_proxy(&silent_addr.to_string(), None)
        .connect("127.0.0.1:443")
        .unwrap_err();
    assert!(matches!(err.err, Error::Timeout), "{err:?}");
}

#[test]
fn bad_targets_and_credentials_fail_before_any_byte() {
    let listener = tcp::listen("127.0.0.1:0").unwrap();
    let conn = tcp::connect_addr(listener.local_addr().unwrap()).unwrap();
    let mut server = accept(&listener);
    let long_name = format!("{}:80", "a".repeat(256));
    for target in ["no-port", ":80", "host:0", "host:65536", "host:http", "[fe80::1%lo]:80", "[::1:80", &long_name] {
        let err = socks5::handshake(&conn, target, None).unwrap_err();
        assert!(matches!(&err, socks5::Error::TargetAddress(m) if m.contains(target)), "{target}: {err:?}");
    }
    for auth in [Auth::new("", "p"), Auth::new("u".repeat(256), "p"), Auth::new("u", "p".repeat(256))] {
        let err = socks5::handshake(&conn, "127.0.0.1:80", Some(&auth)).unwrap_err();
        assert!(matches!(err, socks5::Error::Authentication(_)), "{auth:?}: {err:?}");
    }
    // Nothing was sent: the server reads end of stream at once.
    conn.close_write().unwrap();
    server.set_read_deadline(Some(Instant::now() + PATIENCE)).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(server.read(&mut buf).unwrap(), 0, "bytes were sent: {:?}", &buf);

    // Through a dialer: the proxy is not even dialed (it would refuse).
    let nobody = support::retry("a reserved port", || Reserved::bind(sa("127.0.0.1:0")));
    let dialer = Dialer::new().socks5_proxy(&nobody.addr.to_string(), None);
    let err = dialer.connect("host:0").unwrap_err();
    assert!(matches!(&err.err, Error::Address(a) if a.addr == "host:0"), "{err:?}");
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::InvalidInput);
    let dialer = Dialer::new().socks5_proxy(&nobody.addr.to_string(), Some(Auth::new("", "")));
    let err = dialer.connect("127.0.0.1:80").unwrap_err();
    assert!(matches!(socks5_cause(&err), socks5::Error::Authentication(_)), "{err:?}");
    // A proxy that refuses is the proxy dial's own error.
    let err = Dialer::new().socks5_proxy(&nobody.addr.to_string(), None).connect("127.0.0.1:80").unwrap_err();
    assert!(matches!(&err.err, Error::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused), "{err:?}");
    assert_eq!(err.addr, Some(nobody.addr.to_string()));
}

#[test]
fn a_past_deadline_dials_nothing() {
    let proxy = Microsocks::start();
    let now = Instant::now();
    let err = Dialer::new()
        .deadline(now.checked_sub(Duration::from_secs(1)).unwrap_or(now))
        .socks5_proxy(&proxy.addr.to_string(), None)
        .connect("127.0.0.1:80")
        .unwrap_err();
    assert!(matches!(err.err, Error::Timeout), "{err:?}");
}

/// A loopback peer that answers the greeting with `method_reply` and, if
/// the client goes on, the request with `connect_reply`: a proxy that
/// does not speak SOCKS5 properly.
fn misbehaving_peer(method_reply: &'static [u8], connect_reply: &'static [u8]) -> SocketAddr {
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut c = accept(&l);
        c.set_deadline(Some(Instant::now() + PATIENCE)).unwrap();
        let mut greeting = [0u8; 3];
        c.read_exact(&mut greeting).unwrap();
        c.write_all(method_reply).unwrap();
        let mut request = [0u8; 10]; // an IPv4 CONNECT
        if c.read_exact(&mut request).is_ok() {
            let _ = c.write_all(connect_reply);
        }
        // Hold the connection until the client is done with it.
        let _ = c.read(&mut [0u8; 1]);
    });
    addr
}

#[test]
fn replies_that_are_not_socks5_are_protocol_errors() {
    let cases: [(&[u8], &[u8], &str); 4] = [
        (b"HTTP/1.0 400 Bad Request\r\n\r\n", b"", "version 72 in the method reply"),
        (&[5, 0x02], b"", "method 0x02, which was not offered"),
        (&[5, 0], &[4, 0, 0, 1, 0, 0, 0, 0, 0, 0], "version 4 in the connect reply"),
        (&[5, 0], &[5, 0, 1, 1, 0, 0, 0, 0, 0, 0], "reserved byte 0x01"),
    ];
    for (method_reply, connect_reply, want) in cases {
        let conn = to_proxy(misbehaving_peer(method_reply, connect_reply));
        let err = socks5::handshake(&conn, "127.0.0.1:80", None).unwrap_err();
        assert!(matches!(&err, socks5::Error::Protocol(m) if m.contains(want)), "{want}: {err:?}");
    }
    // A failure code beyond RFC 1928's is still a reply, with a neutral text.
    let conn = to_proxy(misbehaving_peer(&[5, 0], &[5, 9, 0, 1, 0, 0, 0, 0, 0, 0]));
    let err = socks5::handshake(&conn, "127.0.0.1:80", None).unwrap_err();
    assert!(matches!(&err, socks5::Error::Reply { code: 9, message } if message == "unknown error"), "{err:?}");
    // A bound address given as a name is returned as one.
    let conn = to_proxy(misbehaving_peer(&[5, 0], &[5, 0, 0, 3, 4, b'p', b'r', b'o', b'x', 0x04, 0x38]));
    assert_eq!(socks5::handshake(&conn, "127.0.0.1:80", None).unwrap(), BoundAddr::Domain("prox".into(), 1080));
}
