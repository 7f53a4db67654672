//! Throwaway certificates for the examples, made with the `openssl`
//! command line: a CA, a server certificate for localhost / 127.0.0.1 /
//! ::1, and a client certificate from the same CA.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Certs {
    pub dir: PathBuf,
}

impl Certs {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn openssl(dir: &Path, args: &[&str]) -> io::Result<()> {
    let out = Command::new("openssl").args(args).current_dir(dir).output().map_err(|e| {
        io::Error::new(e.kind(), format!("cannot run openssl ({e}); install it with: apt-get install openssl"))
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr))))
    }
}

fn issue(dir: &Path, name: &str, subject: &str, ext: &str) -> io::Result<()> {
    let key = format!("{name}.key");
    openssl(dir, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &key])?;
    openssl(dir, &["req", "-new", "-key", &key, "-subj", subject, "-out", &format!("{name}.csr")])?;
    std::fs::write(dir.join(format!("{name}.ext")), ext)?;
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
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    )
}

/// Make a fresh CA, server and client certificate in a temporary directory
/// (removed when the returned value is dropped).
pub fn generate() -> io::Result<Certs> {
    let dir = std::env::temp_dir().join(format!("reseau-example-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let certs = Certs { dir };
    let d = &certs.dir;
    openssl(d, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key"])?;
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=reseau example CA",
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "ca.pem",
        ],
    )?;
    issue(
        d,
        "server",
        "/CN=localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n",
    )?;
    issue(d, "client", "/CN=reseau example client", "extendedKeyUsage=clientAuth\n")?;
    Ok(certs)
}
