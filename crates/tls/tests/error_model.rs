//! One error model: typed OpenSSL failures (`reason`, `verify_error`), a
//! name mismatch that says both names, no cause said twice when a chain is
//! printed link by link (as anyhow's `{:#}` does), one timeout question
//! (`is_timeout`, and `DeadlineExceeded::is` on every timeout's io form),
//! and `Certificate` / `ConnectionState`'s readable `Debug`.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use support::{PATIENCE, Proc, SServer, client_builder, dial, pki, serve_one, server_builder, server_config};
use tls::{IsTimeout, Reason, VerifyError, Version};

/// The error and its sources joined by ": ", as anyhow's `{:#}` prints
/// them; panics if any segment of that text comes twice.
#[track_caller]
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut links = vec![e.to_string()];
    let mut next = e.source();
    while let Some(s) = next {
        links.push(s.to_string());
        next = s.source();
    }
    let text = links.join(": ");
    let segments: Vec<String> = text.split(": ").map(|s| s.trim().to_lowercase()).collect();
    for (i, s) in segments.iter().enumerate() {
        assert!(!segments[..i].contains(s), "{s:?} is said twice in {text:?}");
    }
    for pair in links.windows(2) {
        assert!(
            !pair[0].to_lowercase().contains(&pair[1].to_lowercase()),
            "{:?} repeats its source in {text:?}",
            pair[0]
        );
    }
    text
}

/// A loopback port nobody listens on.
fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[test]
fn a_refused_dial_says_so_once() {
    let addr = refused_addr();
    let op = tcp::connect_addr(addr).unwrap_err();
    assert_eq!(chain(&op), format!("dial tcp {addr}: connection refused"));
    assert!(matches!(&op.err, tcp::Error::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused));
    assert!(!op.is_timeout() && !IsTimeout::is_timeout(&op.err));
    let io: io::Error = op.into();
    assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(chain(&io), format!("dial tcp {addr}: connection refused"));
    assert!(io.get_ref().is_some_and(|e| e.is::<tcp::OpError>()), "the io form still holds the OpError");
    let e = tls::connect_addr(addr, &client_builder().build().unwrap()).unwrap_err();
    assert_eq!(chain(&e), format!("dial tcp {addr}: connection refused"));
}

#[test]
fn tls_failures_say_each_thing_once() {
    // A verification failure.
    let (addr, h) = serve_one(&server_config(), |c| c.handshake());
    let e = dial(addr, &client_builder().ca_file(pki().path("ca2.pem")).build().unwrap()).unwrap_err();
    let text = chain(&e);
    assert!(text.starts_with("tls handshake failed") && text.contains("certificate verify failed"), "{text}");
    let server = h.join().unwrap().unwrap_err();
    chain(&server);
    chain(&io::Error::from(e));
    chain(&io::Error::from(server));
    // A closed connection, a config error.
    let (addr, h) = serve_one(&server_config(), |c| c.handshake());
    let c = dial(addr, &client_builder().build().unwrap()).unwrap();
    h.join().unwrap().unwrap();
    c.close().unwrap();
    let closed = (&c).read(&mut [0u8; 1]).unwrap_err();
    assert!(tls::Closed::is(&closed));
    chain(&closed);
    let config = tls::Config::builder().cert_pem("x").key_pem("y").build().unwrap_err();
    chain(&config);
    chain(&tls::Error::Config(config));
}

#[test]
fn the_peer_resetting_mid_read_says_so_once() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let c = tls::client(tcp::connect_addr(addr).unwrap(), &client_builder().build().unwrap()).unwrap();
    c.set_deadline(Some(support::soon())).unwrap();
    let (s, _) = l.accept().unwrap();
    testkit::linger0(&s);
    drop(s); // RST before any answer
    let e = c.handshake().unwrap_err();
    let text = chain(&e);
    assert!(text.contains("reset") || text.contains("closed"), "{text}");
}

/// Every timeout answers the one question the same way in every form.
#[track_caller]
fn assert_timeout(e: tls::Error) {
    assert!(e.is_timeout(), "is_timeout: {e}");
    assert!(IsTimeout::is_timeout(&e));
    chain(&e);
    let io: io::Error = e.into();
    assert_eq!(io.kind(), io::ErrorKind::TimedOut, "{io}");
    assert!(io.is_timeout());
    assert!(tls::DeadlineExceeded::is(&io), "DeadlineExceeded::is on the io form of {io}");
    chain(&io);
}

#[test]
fn one_timeout_question() {
    // A dial that runs out of time: a deadline already passed.
    let op = tcp::Dialer::new().deadline(Instant::now()).connect_addr(refused_addr()).unwrap_err();
    assert!(op.is_timeout() && IsTimeout::is_timeout(&op) && op.err.is_timeout(), "{op}");
    let io: io::Error = tcp::Dialer::new().deadline(Instant::now()).connect_addr(refused_addr()).unwrap_err().into();
    let expired = io.get_ref().and_then(|e| e.downcast_ref::<tls::Expired>()).expect("an Expired inside");
    assert!(expired.operation().downcast_ref::<tcp::OpError>().is_some_and(tcp::OpError::is_timeout));
    assert_timeout(tls::Error::Dial(op));

    // The handshake timeout: a peer that never answers.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = client_builder().handshake_timeout(Duration::from_millis(50)).build().unwrap();
    let e = tls::connect_addr(l.local_addr().unwrap(), &cfg).unwrap_err();
    assert!(matches!(e, tls::Error::HandshakeTimeout(_)), "{e:?}");
    assert_timeout(e);

    // A read deadline, as an io::Error and inside a TlsError.
    let (addr, h) = serve_one(&server_config(), |c| {
        c.handshake().unwrap();
        let _ = (&c).read(&mut [0u8; 1]);
    });
    let c = dial(addr, &client_builder().build().unwrap()).unwrap();
    c.set_read_deadline(Some(Instant::now())).unwrap();
    let e = (&c).read(&mut [0u8; 1]).unwrap_err();
    assert!(e.is_timeout() && tls::DeadlineExceeded::is(&e));
    chain(&e);
    let t = tls::TlsError { op: "read", code: 0, message: String::new(), cause: Some(e) };
    assert!(IsTimeout::is_timeout(&t));
    assert_timeout(tls::Error::Tls(t));
    c.close().unwrap();
    h.join().unwrap();

    // An accept deadline.
    let l = support::listener(&server_config());
    l.set_deadline(Some(Instant::now())).unwrap();
    assert_timeout(l.accept().unwrap_err());

    // And things that are not timeouts.
    assert!(!tls::Error::Eof.is_timeout());
    assert!(!io::Error::from(io::ErrorKind::ConnectionReset).is_timeout());
}

/// The handshake's `TlsError`, or a panic.
#[track_caller]
fn tls_error(r: Result<tls::Conn, tls::Error>) -> tls::TlsError {
    match r {
        Err(tls::Error::Tls(e)) => e,
        other => panic!("expected Error::Tls, got {other:?}"),
    }
}

#[test]
fn verification_failures_are_typed() {
    let cases = [
        ("ca2.pem", "server", VerifyError::UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
        ("ca.pem", "expired", VerifyError::CERT_HAS_EXPIRED),
        ("selfsigned.pem", "selfsigned", VerifyError::HOSTNAME_MISMATCH),
    ];
    for (ca, cert, code) in cases {
        let (addr, h) = serve_one(&support::server_builder_with(cert).build().unwrap(), |c| c.handshake());
        let e = tls_error(dial(addr, &client_builder().ca_file(pki().path(ca)).build().unwrap()));
        assert!(e.reason().is_some_and(|r| r.is_ssl(Reason::CERTIFICATE_VERIFY_FAILED)), "{cert}: {:?}", e.reasons());
        assert_eq!(e.verify_error().map(|v| v.code), Some(code), "{cert}: {e}");
        assert!(h.join().unwrap().is_err());
    }
}

#[test]
fn a_name_mismatch_says_both_names() {
    // s_server's certificate is for localhost, 127.0.0.1 and ::1.
    let s = SServer::start(&[]);
    let e = tls_error(dial(s.addr, &client_builder().server_name("example.org").build().unwrap()));
    let v = e.verify_error().expect("a verification failure");
    assert_eq!(v.code, VerifyError::HOSTNAME_MISMATCH);
    assert!(v.message.ends_with("certificate is valid for localhost, not example.org"), "{v}");
    assert!(e.to_string().contains("certificate is valid for localhost, not example.org"), "{e}");
    drop(s);

    // An IP the certificate does not carry.
    let (addr, h) = serve_one(&server_config(), |c| c.handshake());
    let e = tls_error(dial(addr, &client_builder().server_name("127.0.0.2").build().unwrap()));
    let v = e.verify_error().unwrap();
    assert_eq!(v.code, VerifyError::IP_ADDRESS_MISMATCH);
    assert!(v.message.ends_with("certificate is valid for 127.0.0.1, ::1, not 127.0.0.2"), "{v}");
    assert!(h.join().unwrap().is_err());
    // A certificate with no IP at all, dialed by IP.
    let (addr, h) = serve_one(&support::server_builder_with("other").build().unwrap(), |c| c.handshake());
    let cfg = tls::Config::builder().ca_file(pki().path("ca.pem")).handshake_timeout(PATIENCE).build().unwrap();
    let e = tls_error(tls::connect_addr(addr, &cfg));
    assert!(
        e.verify_error()
            .unwrap()
            .message
            .ends_with("certificate is not valid for any names, but wanted to match 127.0.0.1"),
        "{e}"
    );
    assert!(h.join().unwrap().is_err());
}

#[test]
fn a_server_reports_typed_failures_too() {
    // No cipher suite in common (TLS 1.2).
    let server = server_builder().cipher_suites(["ECDHE-ECDSA-AES256-GCM-SHA384"]).build().unwrap();
    let (addr, h) = serve_one(&server, |c| c.handshake());
    let client = client_builder().max_version(Version::Tls12).cipher_suites(["ECDHE-ECDSA-AES128-GCM-SHA256"]);
    assert!(dial(addr, &client.build().unwrap()).is_err());
    match h.join().unwrap() {
        Err(tls::Error::Tls(e)) => assert!(e.reason().is_some_and(|r| r.is_ssl(Reason::NO_SHARED_CIPHER)), "{e}"),
        other => panic!("{other:?}"),
    }
    // A client certificate from a CA the server does not trust, from s_client.
    let cfg = server_builder()
        .client_auth(tls::ClientAuth::RequireAndVerifyClientCert)
        .client_ca_file(pki().path("ca.pem"))
        .build()
        .unwrap();
    let (addr, h) = serve_one(&cfg, |c| c.handshake());
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string(), "-servername", "localhost"])
        .arg("-cert")
        .arg(pki().path("selfsigned.pem"))
        .arg("-key")
        .arg(pki().path("selfsigned.key"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn("openssl s_client", &mut cmd);
    let stdin = p.child.stdin.take().unwrap();
    match h.join().unwrap() {
        Err(tls::Error::Tls(e)) => {
            assert_eq!(e.verify_error().map(|v| v.code), Some(VerifyError::DEPTH_ZERO_SELF_SIGNED_CERT), "{e}")
        }
        other => panic!("{other:?}"),
    }
    drop(stdin);
    p.finish();
}

#[test]
fn certificates_are_summarised() {
    let cert = tls::Certificate::from_der(&pki().der("server")).unwrap();
    assert_eq!(cert.subject, "CN=localhost");
    assert_eq!(cert.issuer, "CN=reseau test CA");
    assert_eq!(cert.dns_names, ["localhost"]);
    assert_eq!(cert.ip_addresses, ["127.0.0.1".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]);
    // Made with -days 30.
    let left = cert.not_after.duration_since(SystemTime::now()).expect("not expired");
    assert!(left > Duration::from_secs(29 * 86_400) && left <= Duration::from_secs(30 * 86_400), "{left:?}");
    let expired = tls::Certificate::from_der(&pki().der("expired")).unwrap();
    assert!(format!("{expired:?}").contains("not_after: 2020-02-01T00:00:00Z"), "{expired:?}");
    assert!(tls::Certificate::from_der(b"\x30\x00").is_none());

    let (addr, h) = serve_one(&server_config(), |c| {
        c.handshake().unwrap();
        let mut c = c;
        c.write_all(b"x").unwrap();
    });
    let c = dial(addr, &client_builder().build().unwrap()).unwrap();
    (&c).read_exact(&mut [0u8; 1]).unwrap();
    h.join().unwrap();
    let st = c.connection_state();
    assert_eq!(st.peer_certificate_summary(), [cert]);
    let dbg = format!("{st:?}");
    assert!(dbg.contains("subject: \"CN=localhost\"") && dbg.contains("dns_names: [\"localhost\"]"), "{dbg}");
    assert!(dbg.contains("ip_addresses: [127.0.0.1, ::1]"), "{dbg}");
    assert!(!dbg.contains("48, 130"), "DER bytes in Debug: {dbg}");
}
