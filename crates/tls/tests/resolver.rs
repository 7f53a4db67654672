//! Certificates chosen at handshake time: `CertifiedKey`, the
//! `certificate_resolver` and its `ClientHello`, `Listener::set_config`,
//! and OCSP stapling. Peers: `openssl s_client` and our own client.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use support::{client_builder, dial, pki, s_client, serve, serve_one, server_builder, soon};
use tls::{CertifiedKey, ClientHello, Version};

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(pki().path(name)).unwrap()
}

/// The PKI's certificate `name` as a `CertifiedKey`.
fn certified(name: &str) -> CertifiedKey {
    CertifiedKey::from_files(pki().path(&format!("{name}.pem")), pki().path(&format!("{name}.key"))).unwrap()
}

/// A client that trusts the test CA and checks the chain, not the name, so
/// either certificate of the PKI will do.
fn any_name_client() -> tls::Config {
    client_builder().verify_hostname(false).build().unwrap()
}

/// The leaf our client was served by `addr`.
fn served_leaf(addr: SocketAddr, client: &tls::Config) -> Vec<u8> {
    let c = dial(addr, client).unwrap();
    c.connection_state().peer_certificates[0].clone()
}

/// The server key encrypted under "fleet password", made once.
fn encrypted_server_key() -> Vec<u8> {
    static KEY: OnceLock<PathBuf> = OnceLock::new();
    let path = KEY.get_or_init(|| {
        support::openssl(
            &pki().dir,
            &["pkey", "-in", "server.key", "-aes256", "-passout", "pass:fleet password", "-out", "resolver-enc.key"],
        );
        pki().path("resolver-enc.key")
    });
    std::fs::read(path).unwrap()
}

#[test]
fn certified_keys_are_checked_when_made() {
    CertifiedKey::from_pem(&pem("server.pem"), &pem("server.key")).unwrap();
    let e = CertifiedKey::from_pem(&pem("server.pem"), &pem("other.key")).unwrap_err();
    assert!(e.0.contains("does not match"), "{e}");
    let e = CertifiedKey::from_pem(b"junk", &pem("server.key")).unwrap_err();
    assert!(e.0.contains("no PEM certificate"), "{e}");
    let e = CertifiedKey::from_pem(&pem("server.pem"), b"junk").unwrap_err();
    assert!(e.0.contains("no PEM private key"), "{e}");
    let e = CertifiedKey::from_files("/nonexistent/c.pem", pki().path("server.key")).unwrap_err();
    assert!(e.0.contains("/nonexistent/c.pem does not exist"), "{e}");
    // An encrypted key: refused without its password, opened with it.
    let enc = encrypted_server_key();
    let e = CertifiedKey::from_pem(&pem("server.pem"), &enc).unwrap_err();
    assert!(e.0.contains("from_encrypted_pem"), "{e}");
    let e = CertifiedKey::from_encrypted_pem(&pem("server.pem"), &enc, "wrong").unwrap_err();
    assert!(e.0.contains("does not open it"), "{e}");
    let key = CertifiedKey::from_encrypted_pem(&pem("server.pem"), &enc, "fleet password").unwrap();
    let shown = format!("{key:?}");
    assert!(shown.contains("CN=localhost") && shown.contains("redacted"), "{shown}");
    assert!(!shown.contains("fleet password") && !shown.contains("PRIVATE"), "{shown}");
}

#[test]
fn a_resolver_swaps_certificates_between_two_handshakes_on_one_listener() {
    let current = Arc::new(RwLock::new(certified("server")));
    let serving = current.clone();
    let cfg = tls::Config::builder()
        .certificate_resolver(move |_: &ClientHello<'_>| Ok(Some(serving.read().unwrap().clone())))
        .build()
        .expect("a server with a resolver needs no static pair");
    let (addr, server) = serve(&cfg, 3, |_, c| c.handshake().map(|()| c.connection_state().peer_certificates));
    let client = any_name_client();
    assert_eq!(served_leaf(addr, &client), pki().der("server"));
    *current.write().unwrap() = certified("other");
    assert_eq!(served_leaf(addr, &client), pki().der("other"), "the next handshake serves the new key");
    // TLS 1.2 too (the first handshake of this config at that version).
    let client12 = client_builder().verify_hostname(false).max_version(Version::Tls12).build().unwrap();
    assert_eq!(served_leaf(addr, &client12), pki().der("other"));
    assert!(server.join().unwrap().iter().all(Result::is_ok));
}

type Hellos = Arc<Mutex<Vec<(Option<String>, Vec<String>)>>>;

#[test]
fn the_resolver_sees_the_client_hello() {
    let hellos: Hellos = Arc::default();
    let log = hellos.clone();
    let key = certified("server");
    let cfg = tls::Config::builder()
        .alpn_protocols(["h2", "http/1.1"])
        .certificate_resolver(move |hello| {
            log.lock().unwrap().push((hello.server_name().map(str::to_owned), hello.alpn_protocols()));
            Ok(Some(key.clone()))
        })
        .build()
        .unwrap();
    let (addr, server) = serve(&cfg, 2, |_, c| c.handshake().is_ok());
    let out = s_client(addr, &["-servername", "svc.example", "-alpn", "spdy/1,http/1.1"]);
    assert!(out.contains("ALPN protocol: http/1.1"), "{out}");
    // An IP dial sends no SNI.
    let ip_client = tls::Config::builder().ca_file(pki().path("ca.pem")).alpn_protocols(["h2"]).build().unwrap();
    let c = tls::connect_addr(addr, &ip_client).unwrap();
    drop(c);
    assert_eq!(server.join().unwrap(), [true, true]);
    let seen = hellos.lock().unwrap().clone();
    assert_eq!(
        seen,
        [(Some("svc.example".into()), vec!["spdy/1".to_string(), "http/1.1".into()]), (None, vec!["h2".into()])]
    );
}

#[test]
fn none_serves_the_configured_pairs_by_sni() {
    let cfg = server_builder()
        .add_certificate_files(pki().path("other.pem"), pki().path("other.key"))
        .certificate_resolver(|_| Ok(None))
        .build()
        .unwrap();
    let (addr, server) = serve(&cfg, 2, |_, c| c.handshake().is_ok());
    assert_eq!(served_leaf(addr, &support::client_config()), pki().der("server"));
    let other = client_builder().server_name("other.test").build().unwrap();
    assert_eq!(served_leaf(addr, &other), pki().der("other"), "the SNI table, as without a resolver");
    assert_eq!(server.join().unwrap(), [true, true]);
}

/// OpenSSL's `SSL_R_TLSV1_ALERT_INTERNAL_ERROR`: the client read the alert.
const ALERT_INTERNAL_ERROR: i32 = 1080;

fn server_failure(r: Result<(), tls::Error>) -> String {
    match r {
        Err(tls::Error::Tls(e)) => e.message,
        other => panic!("expected Error::Tls, got {other:?}"),
    }
}

#[test]
fn a_refusal_or_a_panic_fails_that_handshake_with_an_alert() {
    // An atomic, not a mutex: the panic must not poison what the next call needs.
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let key = certified("server");
    let cfg = tls::Config::builder()
        .certificate_resolver(move |_| {
            match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 {
                1 => Err("no certificate for you".into()),
                2 => panic!("resolver blew up"),
                3 => Ok(None), // and the config has no pair of its own
                _ => Ok(Some(key.clone())),
            }
        })
        .build()
        .unwrap();
    let (addr, server) = serve(&cfg, 4, |_, c| c.handshake());
    let client = support::client_config();
    for _ in 0..3 {
        match dial(addr, &client) {
            Err(tls::Error::Tls(e)) => {
                assert_eq!(e.reason().map(|r| r.reason), Some(ALERT_INTERNAL_ERROR), "{e}");
            }
            other => panic!("the client should read an internal_error alert: {other:?}"),
        }
    }
    dial(addr, &client).expect("the fourth handshake, and the process, go on");
    let results = server.join().unwrap();
    let mut results = results.into_iter();
    let e = server_failure(results.next().unwrap());
    assert!(e.contains("certificate_resolver refused the handshake: no certificate for you"), "{e}");
    let e = server_failure(results.next().unwrap());
    assert!(e.contains("certificate_resolver panicked: resolver blew up"), "{e}");
    let e = server_failure(results.next().unwrap());
    assert!(e.contains("chose no certificate"), "{e}");
    results.next().unwrap().unwrap();
}

#[test]
fn a_server_without_a_certificate_or_a_resolver_is_refused() {
    let e = tls::listen("127.0.0.1:0", &tls::Config::builder().build().unwrap()).unwrap_err();
    assert!(e.to_string().contains("certificate_resolver"), "the message names both ways: {e}");
}

#[test]
fn set_config_applies_to_connections_accepted_afterwards() {
    let l = support::listener(&support::server_config());
    let addr = l.local_addr().unwrap();
    let client = any_name_client();
    let first = std::thread::spawn(move || served_leaf(addr, &client));
    // Accepted under the first config; its handshake runs later.
    let a = l.accept().unwrap();
    a.set_deadline(Some(soon())).unwrap();
    // An unusable config is refused and changes nothing.
    let e = l.set_config(&tls::Config::builder().build().unwrap()).unwrap_err();
    assert!(matches!(e, tls::Error::Config(_)), "{e:?}");
    l.set_config(
        &server_builder().cert_file(pki().path("other.pem")).key_file(pki().path("other.key")).build().unwrap(),
    )
    .unwrap();
    a.handshake().unwrap();
    assert_eq!(first.join().unwrap(), pki().der("server"), "an accepted connection keeps its config");
    let client = any_name_client();
    let second = std::thread::spawn(move || served_leaf(addr, &client));
    let b = l.accept().unwrap();
    b.set_deadline(Some(soon())).unwrap();
    b.handshake().unwrap();
    assert_eq!(second.join().unwrap(), pki().der("other"));
}

/// A real OCSP response for the server certificate, signed by the test CA
/// (`openssl ocsp` as a one-shot responder), made once.
fn ocsp_response() -> Vec<u8> {
    static DER: OnceLock<Vec<u8>> = OnceLock::new();
    DER.get_or_init(|| {
        let dir = pki().dir.join("ocsp");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.txt"), "").unwrap();
        let p = |n: &str| pki().path(n).to_str().unwrap().to_string();
        let (ca, ca_key, server) = (p("ca.pem"), p("ca.key"), p("server.pem"));
        support::openssl(&dir, &["ocsp", "-issuer", &ca, "-cert", &server, "-no_nonce", "-reqout", "req.der"]);
        support::openssl(
            &dir,
            &[
                "ocsp",
                "-index",
                "index.txt",
                "-rsigner",
                &ca,
                "-rkey",
                &ca_key,
                "-CA",
                &ca,
                "-reqin",
                "req.der",
                "-respout",
                "resp.der",
                "-ndays",
                "1",
            ],
        );
        std::fs::read(dir.join("resp.der")).unwrap()
    })
    .clone()
}

#[test]
fn a_stapled_ocsp_response_reaches_the_client() {
    let der = ocsp_response();
    let stapled = certified("server").with_ocsp_staple(der.clone());
    let cfg = tls::Config::builder().certificate_resolver(move |_| Ok(Some(stapled.clone()))).build().unwrap();
    let (addr, server) = serve(&cfg, 3, |_, c| c.handshake().is_ok());
    for max in [Version::Tls13, Version::Tls12] {
        let client = client_builder().max_version(max).build().unwrap();
        let c = dial(addr, &client).unwrap();
        assert_eq!(c.connection_state().ocsp_response.as_ref(), Some(&der), "{max}");
    }
    let out = s_client(addr, &["-servername", "localhost", "-status"]);
    assert!(out.contains("OCSP Response Status: successful"), "{out}");
    assert_eq!(server.join().unwrap(), [true; 3]);
    // Without a staple: nothing.
    let (addr, server) = serve_one(&support::server_config(), |c| c.handshake().is_ok());
    assert_eq!(dial(addr, &support::client_config()).unwrap().connection_state().ocsp_response, None);
    assert!(server.join().unwrap());
}

/// Our client always asks for a staple (status_request), as Go's does: an
/// `openssl s_server -status_file` answers it.
#[test]
fn our_client_asks_for_a_staple() {
    let der = ocsp_response();
    let file = pki().dir.join("ocsp").join("resp.der");
    let s = support::SServer::start(&["-status_file", file.to_str().unwrap()]);
    let c = dial(s.addr, &support::client_config()).unwrap();
    assert_eq!(c.connection_state().ocsp_response, Some(der));
}

/// The resolver on the `Waker` path: an embedded server's `poll_handshake`
/// suspends at the ClientHello, runs the resolver and goes on, and a
/// verify_connection hook runs there too.
#[test]
fn an_embedded_server_resolves_through_poll_handshake() {
    use std::task::{Context, Poll};
    let rt = iopoll::Runtime::new().unwrap();
    let r = rt.clone();
    let (waker, woken) = testkit::task::channel_waker_then(move || r.wake());
    let key = certified("other");
    let cfg = tls::Config::builder()
        .certificate_resolver(move |hello| {
            assert_eq!(hello.server_name(), Some("other.test"));
            Ok(Some(key.clone()))
        })
        .verify_connection(|st| if st.handshake_complete { Ok(()) } else { Err("not complete".into()) })
        .build()
        .unwrap();
    let l = tcp::ListenConfig::new().runtime(rt.clone()).bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let l = tls::Listener::from_tcp(l, &cfg).unwrap();
    let addr = l.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let cfg = client_builder().server_name("other.test").build().unwrap();
        served_leaf(addr, &cfg)
    });
    let run = |f: &mut dyn FnMut(&mut Context<'_>) -> Poll<Result<(), tls::Error>>| {
        testkit::task::drive_loop(
            &waker,
            &woken,
            || {
                rt.turn(Some(support::PATIENCE)).unwrap();
            },
            f,
        )
    };
    let s = testkit::task::drive_loop(
        &waker,
        &woken,
        || {
            rt.turn(Some(support::PATIENCE)).unwrap();
        },
        |cx| l.poll_accept(cx),
    )
    .unwrap();
    s.set_deadline(Some(soon())).unwrap();
    run(&mut |cx| s.poll_handshake(cx)).unwrap();
    assert_eq!(client.join().unwrap(), pki().der("other"));
}

/// A HelloRetryRequest (the client's key share is for a group the server
/// does not take) brings a second ClientHello: the resolver is asked once
/// per handshake, and its key serves the retried hello too.
#[test]
fn a_hello_retry_keeps_the_resolved_key() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = calls.clone();
    let key = certified("other");
    let cfg = tls::Config::builder()
        .curve_preferences(["X25519"])
        .certificate_resolver(move |_| {
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Some(key.clone()))
        })
        .build()
        .unwrap();
    let (addr, server) = serve_one(&cfg, |c| c.handshake().map(|()| c.connection_state().group));
    // The client's first key share is P-256's, which this server refuses.
    let client = client_builder().verify_hostname(false).curve_preferences(["P-256", "X25519"]).build().unwrap();
    assert_eq!(served_leaf(addr, &client), pki().der("other"));
    assert_eq!(server.join().unwrap().unwrap().as_deref(), Some("x25519"), "the retried hello's group");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1, "one handshake, one call");
}
