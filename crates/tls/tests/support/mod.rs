//! Test certificates, made at test time with the `openssl` command line:
//! a CA, a server certificate for localhost / 127.0.0.1 / ::1, a client
//! certificate from the same CA, and a self-signed client certificate.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub struct Pki {
    pub dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl (apt-get install openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn key(dir: &Path, name: &str) {
    openssl(dir, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name]);
}

/// Sign `name`.csr with the CA into `name`.pem with `ext` extensions.
fn sign(dir: &Path, name: &str, subject: &str, ext: &str) {
    key(dir, &format!("{name}.key"));
    openssl(dir, &["req", "-new", "-key", &format!("{name}.key"), "-subj", subject, "-out", &format!("{name}.csr")]);
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "x509", "-req", "-in", &format!("{name}.csr"), "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "30", "-extfile", &format!("{name}.ext"), "-out", &format!("{name}.pem"),
        ],
    );
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("reseau-tls-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        key(&dir, "ca.key");
        openssl(
            &dir,
            &[
                "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=reseau test CA", "-days", "30", "-addext",
                "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out",
                "ca.pem",
            ],
        );
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
            &["req", "-x509", "-new", "-key", "selfsigned.key", "-subj", "/CN=self signed", "-days", "30", "-out", "selfsigned.pem"],
        );
        Pki { dir }
    })
}

impl Pki {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}
