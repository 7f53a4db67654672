//! `verify_hostname(false)` (the chain is checked, the name is not) and
//! `verify_connection` (Go's `VerifyConnection`: every handshake, resumed
//! ones too, after OpenSSL's checks). Peers: `openssl s_server` and our
//! own ends.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use support::{SServer, client_builder, dial, pki, serve, server_builder, soon};

/// `openssl s_server` with the PKI's certificate `name`.
fn s_server(name: &str) -> SServer {
    let (cert, key) = (pki().path(&format!("{name}.pem")), pki().path(&format!("{name}.key")));
    SServer::start(&["-cert", cert.to_str().unwrap(), "-key", key.to_str().unwrap()])
}

/// The message of a handshake that failed with `Error::Tls`.
fn tls_failure<T: std::fmt::Debug>(r: Result<T, tls::Error>) -> tls::TlsError {
    match r {
        Err(tls::Error::Tls(e)) => e,
        other => panic!("expected Error::Tls, got {other:?}"),
    }
}

#[test]
fn verify_hostname_off_checks_the_chain_but_not_the_name() {
    // other.test's certificate, from the trusted CA, reached as localhost.
    let s = s_server("other");
    let strict = client_builder().build().unwrap();
    let e = tls_failure(dial(s.addr, &strict));
    assert_eq!(e.verify_error().map(|v| v.code), Some(tls::VerifyError::HOSTNAME_MISMATCH));
    let lax = client_builder().verify_hostname(false).build().unwrap();
    let c = dial(s.addr, &lax).expect("any name, from a trusted CA");
    assert_eq!(c.connection_state().peer_certificates[0], pki().der("other"));
    assert_eq!(c.connection_state().server_name.as_deref(), Some("localhost"), "SNI is still sent");
    // The chain is still verified: an untrusted CA fails...
    let s = s_server("selfsigned");
    let e = tls_failure(dial(s.addr, &lax));
    assert!(e.verify_error().is_some(), "{e}");
    // ...and so does an expired certificate.
    let s = s_server("expired");
    let e = tls_failure(dial(s.addr, &lax));
    assert_eq!(e.verify_error().map(|v| v.code), Some(tls::VerifyError::CERT_HAS_EXPIRED));
    // No name is needed: an IP dial to a certificate without that IP.
    let s = s_server("other");
    let no_name = tls::Config::builder().ca_file(pki().path("ca.pem")).verify_hostname(false).build().unwrap();
    let c = tls::connect_addr(s.addr, &no_name).expect("an IP dial, the name unchecked");
    assert!(c.connection_state().handshake_complete);
    drop(c); // s_server serves one connection at a time
    let c = tls::client(tcp::connect_addr(s.addr).unwrap(), &no_name).unwrap();
    c.handshake().expect("no name at all");
}

/// A recording `verify_connection` hook answering `verdict`.
type Seen = Arc<Mutex<Vec<tls::ConnectionState>>>;

fn recording(
    verdict: Result<(), String>,
) -> (Seen, impl Fn(&tls::ConnectionState) -> Result<(), String> + Send + Sync + 'static) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    (seen, move |st: &tls::ConnectionState| {
        log.lock().unwrap().push(st.clone());
        verdict.clone()
    })
}

#[test]
fn verify_connection_sees_the_negotiated_state_and_can_refuse_it() {
    let s = SServer::start(&["-alpn", "h2"]);
    let (seen, hook) = recording(Ok(()));
    let cfg = client_builder().alpn_protocols(["h2"]).verify_connection(hook).build().unwrap();
    let c = dial(s.addr, &cfg).unwrap();
    let st = seen.lock().unwrap().pop().expect("the hook ran");
    assert!(st.handshake_complete);
    assert_eq!(st.alpn_protocol.as_deref(), Some("h2"));
    assert_eq!(st.peer_certificates[0], pki().der("server"));
    assert_eq!(st, c.connection_state(), "the state the connection then reports");
    drop(c); // s_server serves one connection at a time
    // Err(msg) fails the handshake with msg in the error.
    let (_, hook) = recording(Err("not today".into()));
    let cfg = client_builder().verify_connection(hook).build().unwrap();
    let e = tls_failure(dial(s.addr, &cfg));
    assert!(e.message.contains("verify_connection") && e.message.contains("not today"), "{e}");
}

#[test]
fn verify_connection_runs_on_resumed_handshakes_and_on_servers() {
    let server_calls = Arc::new(AtomicUsize::new(0));
    let calls = server_calls.clone();
    let server_cfg = server_builder()
        .verify_connection(move |st| {
            calls.fetch_add(1, Ordering::SeqCst);
            assert!(st.handshake_complete);
            Ok(())
        })
        .build()
        .unwrap();
    let (addr, server) = serve(&server_cfg, 2, |_, mut c| {
        c.write_all(b"hi").unwrap();
        let _ = c.read_to_end(&mut Vec::new());
        c.connection_state().session_resumed
    });
    let (seen, hook) = recording(Ok(()));
    let cfg = client_builder().verify_connection(hook).build().unwrap();
    for _ in 0..2 {
        let mut c = dial(addr, &cfg).unwrap();
        c.read_exact(&mut [0u8; 2]).unwrap();
        c.close_write().unwrap();
    }
    assert_eq!(server.join().unwrap(), [false, true]);
    let resumed: Vec<bool> = seen.lock().unwrap().iter().map(|st| st.session_resumed).collect();
    assert_eq!(resumed, [false, true], "once per handshake, the resumed one too");
    assert_eq!(server_calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_server_refusing_in_verify_connection_fails_that_handshake_only() {
    let refuse = Arc::new(AtomicUsize::new(0));
    let n = refuse.clone();
    let server_cfg = server_builder()
        .verify_connection(
            move |_| if n.fetch_add(1, Ordering::SeqCst) == 0 { Err("first one out".into()) } else { Ok(()) },
        )
        .build()
        .unwrap();
    let (addr, server) = serve(&server_cfg, 2, |_, c| {
        let r = c.handshake().map_err(|e| e.to_string());
        if r.is_ok() {
            (&c).write_all(b"ok").unwrap();
        }
        r
    });
    // The client finished its side; the refusal shows as the server closing.
    if let Ok(mut c) = dial(addr, &support::client_config()) {
        c.set_deadline(Some(soon())).unwrap();
        assert!(c.read(&mut [0u8; 2]).map_or(true, |n| n == 0), "nothing from a server that refused");
    }
    let mut c = dial(addr, &support::client_config()).unwrap();
    let mut b = [0u8; 2];
    c.read_exact(&mut b).unwrap();
    let results = server.join().unwrap();
    let e = results[0].as_ref().expect_err("refused");
    assert!(e.contains("first one out"), "{e}");
    assert!(results[1].is_ok());
}

#[test]
fn a_panic_in_a_hook_fails_the_handshake_not_the_process() {
    let s = SServer::start(&[]);
    let cfg = client_builder().verify_connection(|_| panic!("hook blew up")).build().unwrap();
    let e = tls_failure(dial(s.addr, &cfg));
    assert!(e.message.contains("verify_connection panicked") && e.message.contains("hook blew up"), "{e}");
    let cfg = client_builder().verify_peer_certificate(|_| panic!("chain hook blew up")).build().unwrap();
    let e = tls_failure(dial(s.addr, &cfg));
    assert!(e.message.contains("verify_peer_certificate panicked"), "{e}");
    // The process, and a good handshake, go on.
    dial(s.addr, &support::client_config()).unwrap();
}
