//! A self-signed certificate for `localhost`, made once per test process
//! with the `openssl` command line (CI installs it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A certificate and its key, as PEM files.
#[derive(Debug)]
pub struct SelfSigned {
    /// The certificate (CA:TRUE, SANs `localhost`, `127.0.0.1`, `::1`):
    /// trust it as the CA to verify the server.
    pub cert: PathBuf,
    /// Its P-256 private key.
    pub key: PathBuf,
}

/// The process's localhost certificate, made on first use in a directory
/// of its own under the system temporary directory.
pub fn localhost() -> &'static SelfSigned {
    static CERT: OnceLock<SelfSigned> = OnceLock::new();
    CERT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("reseau-testkit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory for certificates");
        let (cert, key) = (dir.join("localhost.pem"), dir.join("localhost.key"));
        run(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "30",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
                "-keyout",
                "localhost.key",
                "-out",
                "localhost.pem",
            ],
        );
        SelfSigned { cert, key }
    })
}

fn run(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `openssl` ({e}): the tests need it (apt-get install openssl)"));
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}
