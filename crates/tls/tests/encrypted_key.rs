//! An encrypted private key: opened with `key_password`, refused in plain
//! words without it or with a wrong one, and never a prompt, even with a
//! terminal attached (where OpenSSL's default asks "Enter PEM pass phrase:"
//! and waits).

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use support::PATIENCE;

const CHILD: &str = "RESEAU_ENCRYPTED_KEY_CHILD";

/// An encrypted key (password "open sesame") and its certificate.
fn encrypted() -> (PathBuf, PathBuf) {
    static MADE: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    MADE.get_or_init(make_encrypted).clone()
}

fn make_encrypted() -> (PathBuf, PathBuf) {
    let dir = support::pki().path("encrypted");
    let (key, cert) = (dir.join("enc.key"), dir.join("enc.pem"));
    {
        std::fs::create_dir_all(&dir).unwrap();
        let run = |args: &[&str]| support::openssl(&dir, args);
        run(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-aes256",
            "-pass",
            "pass:open sesame",
            "-out",
            "enc.key",
        ]);
        run(&[
            "req",
            "-x509",
            "-key",
            "enc.key",
            "-passin",
            "pass:open sesame",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-days",
            "2",
            "-out",
            "enc.pem",
        ]);
    }
    (key, cert)
}

fn server(cert: &Path, key: &Path, password: Option<&str>) -> Result<tls::Config, tls::ConfigError> {
    let b = tls::Config::builder().cert_file(cert).key_file(key).handshake_timeout(PATIENCE);
    match password {
        Some(p) => b.key_password(p),
        None => b,
    }
    .build()
}

/// The server's config is checked at `build` or at first use: either way
/// the failure is a `ConfigError` with `msg` in it.
fn refused(cfg: Result<tls::Config, tls::ConfigError>) -> String {
    match cfg {
        Err(e) => e.to_string(),
        Ok(cfg) => match tls::listen("127.0.0.1:0", &cfg) {
            Err(tls::Error::Config(e)) => e.to_string(),
            other => panic!("an encrypted key without its password was accepted: {other:?}"),
        },
    }
}

#[test]
fn an_encrypted_key_opens_with_its_password_and_only_with_it() {
    let (key, cert) = encrypted();
    let msg = refused(server(&cert, &key, None));
    assert!(msg.contains("is encrypted: set key_password"), "{msg}");
    assert!(msg.contains("enc.key"), "the message names the file: {msg}");
    let msg = refused(server(&cert, &key, Some("wrong")));
    assert!(msg.contains("key_password does not open it"), "{msg}");

    let cfg = server(&cert, &key, Some("open sesame")).unwrap();
    assert!(!format!("{cfg:?}").contains("open sesame"), "the password shows in Debug");
    let listener = tls::listen("127.0.0.1:0", &cfg).unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let mut c = listener.accept().unwrap();
        let mut b = [0; 2];
        c.read_exact(&mut b).unwrap();
        c.write_all(&b).unwrap();
    });
    let client = tls::Config::builder().ca_file(&cert).server_name("localhost").build().unwrap();
    let mut c = tls::connect_addr(addr, &client).unwrap();
    c.write_all(b"hi").unwrap();
    let mut b = [0; 2];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"hi");
    t.join().unwrap();
}

/// Under a pseudo-terminal (util-linux `script`) with a silent, open
/// stdin, a server config with an encrypted key and no password ends at
/// once with the plain error. This test runs itself again as the child.
#[test]
fn an_encrypted_key_never_prompts_on_a_terminal() {
    let (key, cert) = encrypted();
    if std::env::var_os(CHILD).is_some() {
        // The child's part: print what building the server gives.
        println!("RESULT: {}", refused(server(&cert, &key, None)));
        return;
    }
    let me = std::env::current_exe().unwrap();
    let cmd =
        format!("{} --exact an_encrypted_key_never_prompts_on_a_terminal --nocapture --test-threads 1", me.display());
    let start = Instant::now();
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env(CHILD, "1")
        .stdin(Stdio::piped()) // open, and never written: a prompt would wait forever
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script`");
    let mut out = String::new();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!("still running after {PATIENCE:?}: it is waiting at a prompt");
        }
        std::thread::yield_now();
    };
    let out = reader.join().unwrap();
    assert!(status.success(), "{status}: {out}");
    assert!(out.contains("RESULT: ") && out.contains("is encrypted: set key_password"), "{out}");
    assert!(!out.contains("pass phrase"), "OpenSSL prompted: {out}");
}
