//! Server certificate selection by SNI (several pairs, unknown names fall
//! back to the first) and the negotiation knobs: `session_tickets`,
//! `curve_preferences`, `cipher_suites`, `tls13_cipher_suites`, all
//! checked at `build`. Our client and server, and `openssl s_client`.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;

use support::{PATIENCE, Proc, client_builder, dial, pki, serve, serve_one, server_builder};
use tls::Version;

/// localhost (the default) plus other.test.
fn two_name_server() -> tls::ConfigBuilder {
    server_builder().add_certificate_files(pki().path("other.pem"), pki().path("other.key"))
}

/// A server that handshakes and reports the SNI it got; the client's
/// handshake result is the caller's.
fn sni_server(cfg: &tls::Config) -> (SocketAddr, JoinHandle<Option<String>>) {
    serve_one(cfg, |c| {
        let _ = c.handshake();
        c.connection_state().server_name
    })
}

fn leaf(c: &tls::Conn) -> Vec<u8> {
    c.connection_state().peer_certificates.into_iter().next().expect("a peer certificate")
}

#[test]
fn sni_picks_the_certificate_for_the_name() {
    let cfg = two_name_server().build().unwrap();
    for (name, want) in [("other.test", "other"), ("localhost", "server")] {
        let (addr, h) = sni_server(&cfg);
        let c = dial(addr, &client_builder().server_name(name).build().unwrap()).unwrap();
        assert_eq!(leaf(&c), pki().der(want), "SNI {name}");
        assert_eq!(h.join().unwrap().as_deref(), Some(name));
    }
}

#[test]
fn unknown_names_and_no_sni_get_the_first_pair() {
    let cfg = two_name_server().build().unwrap();
    let (addr, h) = sni_server(&cfg);
    let unverified = tls::Config::builder().verify_peer(false).handshake_timeout(PATIENCE);
    let c = dial(addr, &unverified.clone().server_name("unknown.test").build().unwrap()).unwrap();
    assert_eq!(leaf(&c), pki().der("server"));
    assert_eq!(h.join().unwrap().as_deref(), Some("unknown.test"));
    // Dialing an IP sends no SNI at all.
    let (addr, h) = sni_server(&cfg);
    let c = dial(addr, &unverified.build().unwrap()).unwrap();
    assert_eq!(leaf(&c), pki().der("server"));
    assert_eq!(h.join().unwrap(), None);
}

#[test]
fn added_pairs_alone_make_a_server_whose_first_is_the_default() {
    let pki = pki();
    let read = |n: &str| std::fs::read(pki.path(n)).unwrap();
    let cfg = tls::Config::builder()
        .add_certificate_pem(read("other.pem"), read("other.key"))
        .add_certificate_pem(read("server.pem"), read("server.key"))
        .handshake_timeout(PATIENCE)
        .build()
        .unwrap();
    let (addr, h) = sni_server(&cfg);
    let c = dial(addr, &tls::Config::builder().verify_peer(false).build().unwrap()).unwrap();
    assert_eq!(leaf(&c), pki.der("other"));
    h.join().unwrap();
    let (addr, h) = sni_server(&cfg);
    let c = dial(addr, &client_builder().build().unwrap()).unwrap();
    assert_eq!(leaf(&c), pki.der("server"), "SNI localhost finds the second pair");
    h.join().unwrap();
}

/// A self-signed RSA certificate for `rsa.test` (cert, key), made once.
fn rsa_identity() -> &'static (Vec<u8>, Vec<u8>) {
    static RSA: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    RSA.get_or_init(|| {
        let dir = pki().path("rsa");
        std::fs::create_dir_all(&dir).unwrap();
        support::openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=rsa.test",
                "-addext",
                "subjectAltName=DNS:rsa.test",
                "-keyout",
                "rsa.key",
                "-out",
                "rsa.pem",
            ],
        );
        (std::fs::read(dir.join("rsa.pem")).unwrap(), std::fs::read(dir.join("rsa.key")).unwrap())
    })
}

#[test]
fn an_rsa_pair_beside_an_ec_default_is_served_alone() {
    // OpenSSL keeps one pair per key type: the RSA name must get the RSA
    // certificate, and the others the EC one, whatever the client prefers.
    let (cert, key) = rsa_identity();
    let cfg = server_builder().add_certificate_pem(cert.clone(), key.clone()).build().unwrap();
    for max in [Version::Tls13, Version::Tls12] {
        let (addr, h) = sni_server(&cfg);
        let client = tls::Config::builder().ca_pem(cert.clone()).server_name("rsa.test").max_version(max);
        let c = dial(addr, &client.build().unwrap()).unwrap_or_else(|e| panic!("{max}: {e}"));
        assert_eq!(c.connection_state().version, Some(max));
        h.join().unwrap();
        let (addr, h) = sni_server(&cfg);
        let c = dial(addr, &client_builder().max_version(max).build().unwrap()).unwrap();
        assert_eq!(leaf(&c), pki().der("server"), "{max}");
        h.join().unwrap();
    }
}

#[test]
fn s_client_gets_the_certificate_for_its_sni() {
    let (addr, h) = sni_server(&two_name_server().build().unwrap());
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string(), "-servername", "other.test"])
        .args(["-verify_return_error", "-verify_hostname", "other.test", "-CAfile"])
        .arg(pki().path("ca.pem"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (out, err, _) = Proc::spawn("openssl s_client", &mut cmd).finish();
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}\n{err}");
    assert!(out.contains("CN = other.test"), "{out}");
    assert_eq!(h.join().unwrap().as_deref(), Some("other.test"));
}

/// Python's ssl module, verifying, once per name given: `name CN` lines.
const PYTHON_SNI_CLIENT: &str = r#"
import socket, ssl, sys
ca, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context(cafile=ca)
for name in sys.argv[3:]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=name) as t:
            subject = dict(x[0] for x in t.getpeercert()["subject"])
            print(name, subject["commonName"])
"#;

#[test]
fn python_ssl_gets_the_certificate_for_its_sni() {
    let (addr, h) = serve(&two_name_server().build().unwrap(), 2, |_, c| {
        let _ = c.handshake();
        c.connection_state().server_name
    });
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(PYTHON_SNI_CLIENT)
        .arg(pki().path("ca.pem"))
        .arg(addr.port().to_string())
        .args(["other.test", "localhost"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (out, err, status) = Proc::spawn("python3", &mut cmd).finish();
    assert!(status.success(), "python3 failed:\n{out}\n{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["other.test other.test", "localhost localhost"], "{err}");
    let names = h.join().unwrap();
    assert_eq!(names, [Some("other.test".to_string()), Some("localhost".to_string())]);
}

/// Dial `n` times with one client `Config` against a server built from
/// `server`; whether each connection resumed, as both ends saw it.
fn resumptions(server: tls::ConfigBuilder, max: Version, n: usize) -> Vec<(bool, bool)> {
    let (addr, h) = serve(&server.build().unwrap(), n, |_, mut c| {
        c.handshake().unwrap();
        c.write_all(b"hi").unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        c.connection_state().session_resumed
    });
    let cfg = client_builder().max_version(max).build().unwrap();
    let ours: Vec<bool> = (0..n)
        .map(|_| {
            let mut c = dial(addr, &cfg).unwrap();
            // Reading processes the TLS 1.3 tickets sent after the handshake.
            let mut b = [0u8; 2];
            c.read_exact(&mut b).unwrap();
            c.close_write().unwrap();
            c.connection_state().session_resumed
        })
        .collect();
    ours.into_iter().zip(h.join().unwrap()).collect()
}

#[test]
fn session_tickets_off_means_every_handshake_is_full() {
    for max in [Version::Tls13, Version::Tls12] {
        let on = resumptions(server_builder(), max, 2);
        assert_eq!(on, [(false, false), (true, true)], "{max}: control, tickets on");
        let off = resumptions(server_builder().session_tickets(false), max, 3);
        assert_eq!(off, [(false, false); 3], "{max}: tickets off");
    }
}

#[test]
fn curve_preferences_decide_the_key_exchange() {
    let server = server_builder().curve_preferences(["P-384"]).build().unwrap();
    let (addr, h) = serve_one(&server, |c| c.handshake());
    let r = dial(addr, &client_builder().curve_preferences(["X25519"]).build().unwrap());
    assert!(matches!(r, Err(tls::Error::Tls(_))), "no group in common: {r:?}");
    assert!(h.join().unwrap().is_err());
    let (addr, h) = serve_one(&server, |c| c.handshake());
    let c = dial(addr, &client_builder().curve_preferences(["X25519", "P-384"]).build().unwrap()).unwrap();
    h.join().unwrap().unwrap();
    assert_eq!(c.connection_state().group.as_deref(), Some("secp384r1"), "the group reported");

    // What s_client reports it negotiated.
    let (addr, h) = serve_one(&server, |c| {
        let _ = c.handshake();
    });
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string(), "-servername", "localhost"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (out, err, _) = Proc::spawn("openssl s_client", &mut cmd).finish();
    h.join().unwrap();
    assert!(out.contains("secp384r1") || out.contains("P-384"), "s_client's temp key:\n{out}\n{err}");
}

#[test]
fn cipher_suites_decide_the_suite() {
    // TLS 1.2: the client's list.
    let suite = "ECDHE-ECDSA-CHACHA20-POLY1305";
    let (addr, h) = serve_one(&server_builder().build().unwrap(), |c| {
        c.handshake().unwrap();
        c.connection_state().cipher_suite
    });
    let client = client_builder().max_version(Version::Tls12).cipher_suites([suite]).build().unwrap();
    let c = dial(addr, &client).unwrap();
    assert_eq!(c.connection_state().cipher_suite.as_deref(), Some(suite));
    assert_eq!(h.join().unwrap().as_deref(), Some(suite));
    // No suite in common.
    let server = server_builder().cipher_suites(["ECDHE-ECDSA-AES256-GCM-SHA384"]).build().unwrap();
    let (addr, h) = serve_one(&server, |c| c.handshake());
    assert!(matches!(dial(addr, &client), Err(tls::Error::Tls(_))));
    assert!(h.join().unwrap().is_err());

    // TLS 1.3: the server's list.
    let suite = "TLS_CHACHA20_POLY1305_SHA256";
    let server = server_builder().tls13_cipher_suites([suite]).build().unwrap();
    let (addr, h) = serve_one(&server, |c| {
        c.handshake().unwrap();
        c.connection_state().cipher_suite
    });
    let c = dial(addr, &client_builder().build().unwrap()).unwrap();
    assert_eq!(c.connection_state().cipher_suite.as_deref(), Some(suite));
    assert_eq!(h.join().unwrap().as_deref(), Some(suite));
}

#[test]
fn unknown_names_are_refused_at_build() {
    let b = tls::Config::builder;
    for (what, r) in [
        ("curve_preferences", b().curve_preferences(["X25519", "secp999"]).build()),
        ("cipher_suites", b().cipher_suites(["ECDHE-RSA-AES128-GCM-SHA256", "RC4-FOREVER"]).build()),
        ("cipher_suites", b().cipher_suites(["TLS_AES_128_GCM_SHA256"]).build()),
        ("tls13_cipher_suites", b().tls13_cipher_suites(["ECDHE-RSA-AES128-GCM-SHA256"]).build()),
        ("curve_preferences", b().curve_preferences(Vec::<String>::new()).build()),
    ] {
        let e = r.expect_err(what);
        assert!(e.0.starts_with(what), "{e}");
    }
}
