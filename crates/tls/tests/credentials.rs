//! Credentials from memory (`cert_pem`, `key_pem`, `ca_pem`,
//! `client_ca_pem`), checked at `build` in plain words, and the
//! `verify_peer_certificate` hook, against our own peers and real ones
//! (`openssl s_server`, `openssl s_client`).

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};

use support::{PATIENCE, Proc, SServer, dial, pki, read_line, serve_one};
use tls::ClientAuth;

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(pki().path(name)).unwrap()
}

/// A server configured from memory only.
fn memory_server() -> tls::ConfigBuilder {
    tls::Config::builder().cert_pem(pem("server.pem")).key_pem(pem("server.key")).handshake_timeout(PATIENCE)
}

/// A client trusting the test CA from memory, verifying `localhost`.
fn memory_client() -> tls::ConfigBuilder {
    tls::Config::builder().ca_pem(pem("ca.pem")).server_name("localhost").handshake_timeout(PATIENCE)
}

fn echo_once(c: &tls::Conn) {
    let mut b = [0u8; 4];
    let mut c = c;
    c.read_exact(&mut b).unwrap();
    c.write_all(&b).unwrap();
}

fn ping(c: &tls::Conn) {
    let mut c = c;
    c.write_all(b"ping").unwrap();
    let mut b = [0u8; 4];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ping");
}

#[test]
fn mutual_tls_entirely_from_memory() {
    let server = memory_server()
        .client_auth(ClientAuth::RequireAndVerifyClientCert)
        .client_ca_pem(pem("ca.pem"))
        .build()
        .unwrap();
    let (addr, h) = serve_one(&server, |c| {
        c.handshake().unwrap();
        echo_once(&c);
        c.connection_state()
    });
    let client = memory_client().cert_pem(pem("client.pem")).key_pem(pem("client.key")).build().unwrap();
    let c = dial(addr, &client).unwrap();
    ping(&c);
    assert_eq!(c.connection_state().peer_certificates.first(), Some(&pki().der("server")));
    assert_eq!(h.join().unwrap().peer_certificates.first(), Some(&pki().der("client")), "the server saw our cert");
    // Key material from memory never shows in Debug.
    let dbg = format!("{client:?}");
    assert!(!dbg.contains("PRIVATE KEY") && dbg.contains("bytes"), "{dbg}");
}

#[test]
fn memory_client_against_s_server() {
    let s = SServer::start(&[]);
    let c = dial(s.addr, &memory_client().build().unwrap()).unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    c.set_deadline(Some(support::soon())).unwrap();
    (&c).write_all(b"olleh\n").unwrap();
    assert_eq!(read_line(&c).unwrap(), "hello\n");
}

#[test]
fn s_client_verifies_a_memory_server_and_presents_a_checked_client_cert() {
    let cfg = memory_server()
        .client_auth(ClientAuth::RequireAndVerifyClientCert)
        .client_ca_pem(pem("ca.pem"))
        .build()
        .unwrap();
    let (addr, server) = serve_one(&cfg, |c| {
        c.handshake().expect("handshake with s_client");
        let line = read_line(&c).unwrap();
        (&c).write_all(b"hi s_client\n").unwrap();
        let st = c.connection_state();
        c.close().unwrap();
        (line, st)
    });
    let mut p = s_client_with_client_cert(addr, &["-verify_return_error"]);
    let mut stdin = p.child.stdin.take().unwrap();
    stdin.write_all(b"hello reseau\n").unwrap();
    let (out, err, _) = p.finish();
    drop(stdin);
    let (line, st) = server.join().unwrap();
    assert_eq!(line, "hello reseau\n");
    assert!(out.contains("hi s_client"), "{out}\n{err}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}\n{err}");
    assert_eq!(st.peer_certificates.first(), Some(&pki().der("client")));
}

/// What a hook saw, and a hook that records it and answers `verdict`.
type Seen = Arc<Mutex<Vec<Vec<Vec<u8>>>>>;
type Hook = Box<dyn Fn(&[Vec<u8>]) -> Result<(), String> + Send + Sync>;

/// `openssl s_client` to `addr` (SNI localhost), trusting the test CA and
/// presenting the test client certificate; `extra` arguments go last.
fn s_client_with_client_cert(addr: std::net::SocketAddr, extra: &[&str]) -> Proc {
    let pki = pki();
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string(), "-servername", "localhost"])
        .arg("-CAfile")
        .arg(pki.path("ca.pem"))
        .arg("-cert")
        .arg(pki.path("client.pem"))
        .arg("-key")
        .arg(pki.path("client.key"))
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Proc::spawn("openssl s_client", &mut cmd)
}

fn recording(verdict: Result<(), String>) -> (Seen, Hook) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let hook = move |chain: &[Vec<u8>]| {
        log.lock().unwrap().push(chain.to_vec());
        verdict.clone()
    };
    (seen, Box::new(hook))
}

/// The handshake failed with `Error::Tls` whose message holds `msg`.
#[track_caller]
fn assert_rejected(r: Result<(), tls::Error>, msg: &str) {
    match r {
        Err(tls::Error::Tls(e)) => {
            assert_eq!(e.op, "handshake");
            assert!(e.message.contains(msg), "the hook's message {msg:?} is in the error: {e}");
        }
        other => panic!("expected the hook to fail the handshake, got {other:?}"),
    }
}

#[test]
fn client_hook_sees_the_chain_leaf_first_from_s_server_and_can_reject_it() {
    // s_server sends the leaf and the CA behind it.
    let pki = pki();
    let s = SServer::start(&["-cert_chain", pki.path("ca.pem").to_str().unwrap()]);
    let want = vec![pki.der("server"), std::fs::read(pki.path("ca.der")).unwrap()];

    let (seen, hook) = recording(Ok(()));
    let cfg = support::client_builder().verify_peer_certificate(hook).build().unwrap();
    let c = dial(s.addr, &cfg).unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    (&c).write_all(b"cba\n").unwrap();
    assert_eq!(read_line(&c).unwrap(), "abc\n");
    assert_eq!(seen.lock().unwrap().as_slice(), std::slice::from_ref(&want), "called once, with the chain, leaf first");
    c.close().unwrap(); // s_server serves one client at a time

    let (seen, hook) = recording(Err("pinned key mismatch".into()));
    let cfg = support::client_builder().verify_peer_certificate(hook).build().unwrap();
    let c = tls::client(tcp::connect_addr(s.addr).unwrap(), &cfg).unwrap();
    c.set_deadline(Some(support::soon())).unwrap();
    assert_rejected(c.handshake(), "pinned key mismatch");
    assert!(!c.is_open(), "a rejected peer leaves the connection unusable");
    assert!((&c).write(b"x").is_err(), "nothing is sent to a rejected peer");
    assert_eq!(*seen.lock().unwrap(), [want]);
}

#[test]
fn client_hook_runs_with_verification_off_and_only_after_openssl_accepts() {
    // Verification off: the hook is the only check, as Go's with
    // InsecureSkipVerify.
    let (addr, h) = serve_one(&support::server_config(), |c| {
        let _ = c.handshake();
    });
    let (seen, hook) = recording(Ok(()));
    let cfg = tls::Config::builder().verify_peer(false).verify_peer_certificate(hook).build().unwrap();
    dial(addr, &cfg).unwrap();
    h.join().unwrap();
    assert_eq!(*seen.lock().unwrap(), [vec![pki().der("server")]]);

    // OpenSSL rejects first (wrong CA): the hook is never asked.
    let (addr, h) = serve_one(&support::server_config(), |c| {
        let _ = c.handshake();
    });
    let (seen, hook) = recording(Ok(()));
    let cfg = support::client_builder().ca_file(pki().path("ca2.pem")).verify_peer_certificate(hook).build().unwrap();
    assert!(matches!(dial(addr, &cfg), Err(tls::Error::Tls(_))));
    h.join().unwrap();
    assert!(seen.lock().unwrap().is_empty(), "called although OpenSSL refused the chain");
}

#[test]
fn server_hook_checks_client_certificates_from_s_client() {
    let pki = pki();
    let (seen, hook) = recording(Err("client not on the allow list".into()));
    let cfg = memory_server()
        .client_auth(ClientAuth::RequireAndVerifyClientCert)
        .client_ca_pem(pem("ca.pem"))
        .verify_peer_certificate(hook)
        .build()
        .unwrap();
    let (addr, server) = serve_one(&cfg, |c| c.handshake());
    let mut p = s_client_with_client_cert(addr, &[]);
    let stdin = p.child.stdin.take().unwrap();
    assert_rejected(server.join().unwrap(), "client not on the allow list");
    drop(stdin);
    p.finish();
    // s_client sends the chain it built: the leaf, then the CA.
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "called once");
    assert_eq!(seen[0].first(), Some(&pki.der("client")), "leaf first");
}

#[test]
fn server_hook_accepts_and_sees_no_chain_when_none_is_sent() {
    let (seen, hook) = recording(Ok(()));
    let cfg = memory_server().client_auth(ClientAuth::RequestClientCert).verify_peer_certificate(hook).build().unwrap();
    let (addr, h) = serve_one(&cfg, |c| {
        c.handshake().unwrap();
        echo_once(&c);
    });
    ping(&dial(addr, &memory_client().build().unwrap()).unwrap());
    h.join().unwrap();
    assert_eq!(*seen.lock().unwrap(), [Vec::<Vec<u8>>::new()], "asked, with an empty chain");
}

/// While the hook runs, the connection's other methods still answer: no
/// lock of ours is held around the call.
#[test]
fn hook_runs_with_no_lock_held() {
    let (addr, h) = serve_one(&support::server_config(), |c| {
        let _ = c.handshake();
        let _ = (&c).read(&mut [0u8; 1]);
    });
    let (entered_tx, entered) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let cfg = support::client_builder()
        .verify_peer_certificate(move |_: &[Vec<u8>]| {
            entered_tx.send(()).unwrap();
            released.lock().unwrap().recv_timeout(PATIENCE).map_err(|e| e.to_string())
        })
        .build()
        .unwrap();
    let c = Arc::new(tls::client(tcp::connect_addr(addr).unwrap(), &cfg).unwrap());
    c.set_deadline(Some(support::soon())).unwrap();
    let driver = {
        let c = c.clone();
        std::thread::spawn(move || c.handshake())
    };
    testkit::bounded(&entered, "the hook to be called");
    let c2 = c.clone();
    testkit::within(PATIENCE, "the connection's methods during the hook", move || {
        assert!(c2.is_open());
        let _ = c2.connection_state();
        let _ = format!("{c2} {c2:?}");
        c2.set_read_deadline(Some(support::soon())).unwrap();
    });
    release.send(()).unwrap();
    driver.join().unwrap().unwrap();
    drop(c);
    h.join().unwrap();
}

/// A `ConfigError` from `build`, in plain words: no OpenSSL error codes.
#[track_caller]
fn refused(b: tls::ConfigBuilder) -> String {
    let e = b.build().expect_err("build should refuse this");
    let msg = e.to_string();
    assert!(!msg.contains("error:0") && !msg.contains("routines"), "OpenSSL's codes leak into {msg:?}");
    msg
}

#[test]
fn build_refuses_bad_credentials_naming_the_file_and_the_problem() {
    let pki = pki();
    let b = tls::Config::builder;
    let (server_pem, server_key) = (pki.path("server.pem"), pki.path("server.key"));
    let path = |n: &str| pki.path(n).display().to_string();

    let missing = pki.path("no-such.pem");
    let msg = refused(b().cert_file(&missing).key_file(&server_key));
    assert!(msg.contains(&missing.display().to_string()) && msg.contains("does not exist"), "{msg}");

    let garbage = pki.scratch("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n").unwrap();
    let msg = refused(b().cert_file(&garbage).key_file(&server_key));
    assert!(msg.contains("garbage.pem") && msg.contains("malformed PEM certificate"), "{msg}");

    // A key where the certificate belongs, and the other way round.
    let msg = refused(b().cert_file(&server_key).key_file(&server_key));
    assert!(msg.contains(&path("server.key")) && msg.contains("holds no PEM certificate"), "{msg}");
    let msg = refused(b().cert_file(&server_pem).key_file(&server_pem));
    assert!(msg.contains("key_file") && msg.contains("holds no PEM private key"), "{msg}");

    // A key of another certificate.
    let msg = refused(b().cert_file(&server_pem).key_file(pki.path("other.key")));
    assert!(msg.contains("other.key") && msg.contains("server.pem") && msg.contains("does not match"), "{msg}");
    let msg = refused(b().cert_pem(pem("server.pem")).key_pem(pem("client.key")));
    assert_eq!(msg, "tls config error: key_pem does not match cert_pem: the key belongs to another certificate");

    // CAs.
    let msg = refused(b().ca_pem("no certificates here"));
    assert_eq!(msg, "tls config error: ca_pem holds no PEM certificate");
    let msg = refused(b().client_ca_file(&missing));
    assert!(msg.contains("client_ca_file") && msg.contains("does not exist"), "{msg}");

    // A key or a certificate alone.
    assert!(refused(b().cert_pem(pem("server.pem"))).contains("key_pem"));
    assert!(refused(b().key_pem(pem("server.key"))).contains("cert_pem"));

    // Controls: the same material, well paired, builds.
    b().cert_file(&server_pem).key_file(&server_key).ca_pem(pem("ca.pem")).build().unwrap();
    b().cert_pem(pem("server.pem")).key_file(&server_key).build().unwrap();
}

#[test]
fn an_encrypted_key_from_memory_needs_its_password() {
    let dir = pki().path("encrypted-memory");
    std::fs::create_dir_all(&dir).unwrap();
    support::openssl(
        &dir,
        &[
            "pkey",
            "-in",
            pki().path("server.key").to_str().unwrap(),
            "-aes256",
            "-passout",
            "pass:s3cret",
            "-out",
            "k.pem",
        ],
    );
    let key = std::fs::read(dir.join("k.pem")).unwrap();
    let b = || tls::Config::builder().cert_pem(pem("server.pem")).key_pem(key.clone());
    assert_eq!(refused(b()), "tls config error: key_pem is encrypted: set key_password");
    assert_eq!(
        refused(b().key_password("wrong")),
        "tls config error: key_pem is encrypted and key_password does not open it"
    );
    let cfg = b().key_password("s3cret").handshake_timeout(PATIENCE).build().unwrap();
    let (addr, h) = serve_one(&cfg, |c| echo_once(&c));
    ping(&dial(addr, &memory_client().build().unwrap()).unwrap());
    h.join().unwrap();
}
