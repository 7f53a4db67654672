//! Certificates made once per test process with the `openssl` command
//! line (CI installs it): a self-signed one for `localhost`, and a PKI
//! with a CA, leaves for server and client, and certificates meant to fail.

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
        openssl(
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

/// The test PKI: a CA (`ca`), a server certificate for localhost /
/// 127.0.0.1 / ::1 (`server`), one for `other.test` (`other`), a client
/// certificate (`client`), all from the CA; a self-signed certificate
/// (`selfsigned`), a second, untrusted CA (`ca2`), and a server certificate
/// from the CA that expired in 2020 (`expired`). Each is `NAME.pem` with
/// its key `NAME.key`; the leaves also as DER, `NAME.der`.
#[derive(Debug)]
pub struct Pki {
    /// The directory holding the files.
    pub dir: PathBuf,
}

/// Run the `openssl` command line in `dir`; a failure fails the test.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = match Command::new("openssl").args(args).current_dir(dir).output() {
        Ok(out) => out,
        Err(e) => {
            panic!("cannot run `openssl` ({e}): the tests need the openssl command line (apt-get install openssl)")
        }
    };
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn key(dir: &Path, name: &str) {
    openssl(dir, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name]);
}

/// A self-signed CA `name`.pem / `name`.key.
fn ca(dir: &Path, name: &str, cn: &str) {
    key(dir, &format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={cn}"),
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// Sign `name`.csr with the CA into `name`.pem with `ext` extensions.
fn sign(dir: &Path, name: &str, subject: &str, ext: &str) {
    key(dir, &format!("{name}.key"));
    openssl(dir, &["req", "-new", "-key", &format!("{name}.key"), "-subj", subject, "-out", &format!("{name}.csr")]);
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// A server certificate for localhost / 127.0.0.1 from the CA, valid only
/// in January 2020. `openssl x509 -req` cannot backdate; `openssl ca` can.
fn expired(dir: &Path) {
    key(dir, "expired.key");
    openssl(dir, &["req", "-new", "-key", "expired.key", "-subj", "/CN=localhost", "-out", "expired.csr"]);
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("expired.srl"), "1000\n").unwrap();
    std::fs::write(
        dir.join("expired.cnf"),
        "[ ca ]\ndefault_ca = ca_default\n\
         [ ca_default ]\ndatabase = index.txt\nnew_certs_dir = .\nserial = expired.srl\ndefault_md = sha256\n\
         policy = policy_any\nunique_subject = no\nemail_in_dn = no\n\
         [ policy_any ]\ncommonName = supplied\n\
         [ ext ]\nsubjectAltName = DNS:localhost,IP:127.0.0.1\nextendedKeyUsage = serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "expired.cnf",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca.key",
            "-in",
            "expired.csr",
            "-out",
            "expired.pem",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200201000000Z",
            "-extensions",
            "ext",
            "-notext",
        ],
    );
}

fn der(dir: &Path, name: &str) {
    openssl(dir, &["x509", "-in", &format!("{name}.pem"), "-outform", "DER", "-out", &format!("{name}.der")]);
}

/// The process's PKI, made on first use with the `openssl` command line.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = crate::scratch_dir("reseau-pki");
        ca(&dir, "ca", "reseau test CA");
        ca(&dir, "ca2", "reseau other CA");
        sign(
            &dir,
            "server",
            "/CN=localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n",
        );
        sign(&dir, "other", "/CN=other.test", "subjectAltName=DNS:other.test\nextendedKeyUsage=serverAuth\n");
        sign(&dir, "client", "/CN=reseau client", "extendedKeyUsage=clientAuth\n");
        key(&dir, "selfsigned.key");
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "selfsigned.key",
                "-subj",
                "/CN=self signed",
                "-days",
                "30",
                "-out",
                "selfsigned.pem",
            ],
        );
        expired(&dir);
        for name in ["ca", "server", "other", "client", "selfsigned", "expired"] {
            der(&dir, name);
        }
        Pki { dir }
    })
}

impl Pki {
    /// The file `name` in the PKI directory (`"ca.pem"`, `"client.key"`, ...).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The DER encoding of certificate `name` (`"server"`, `"client"`, ...).
    pub fn der(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(&format!("{name}.der"))).unwrap()
    }

    /// A leaf certificate issued by the PKI's CA on first call for `name`:
    /// subject `subject` (`"/CN=x"`), extensions `ext` (OpenSSL's extfile
    /// syntax, one per line: `"subjectAltName=DNS:a.test\n"`), with a
    /// P-256 key. Returns `NAME.pem` and `NAME.key` in the PKI directory.
    /// Safe to call from tests running in parallel.
    pub fn issue(&self, name: &str, subject: &str, ext: &str) -> (PathBuf, PathBuf) {
        static ISSUED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let mut issued = ISSUED.lock().unwrap_or_else(|e| e.into_inner());
        if !issued.iter().any(|n| n == name) {
            // One at a time: signing rewrites the CA's serial file.
            sign(&self.dir, name, subject, ext);
            issued.push(name.to_string());
        }
        (self.path(&format!("{name}.pem")), self.path(&format!("{name}.key")))
    }

    /// A fresh path in the PKI directory (for key logs and the like).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.path(name);
        let _ = std::fs::remove_file(&p);
        p
    }
}
