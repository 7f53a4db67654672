//! Test support shared by the integration tests.
//!
//! - Certificates made at test time with the `openssl` command line: a CA,
//!   a server certificate for localhost / 127.0.0.1 / ::1, one for
//!   `other.test`, a client certificate from the same CA, a self-signed
//!   certificate, a second (untrusted) CA, and a server certificate from the
//!   CA that expired in 2020. DER copies of the leaves sit next to them.
//! - Configurations, and server threads for our own TLS server.
//! - [`Proc`]: a child process (openssl, curl, python3) that is killed and
//!   reaped when dropped; [`Lines`]: its output line by line, as it comes;
//!   [`SServer`]: `openssl s_server` on a port it picks and reports.

#![allow(dead_code)]
#![allow(clippy::result_large_err)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

pub use testkit::PATIENCE;

/// A deadline [`PATIENCE`] from now.
pub fn soon() -> Instant {
    Instant::now() + PATIENCE
}

pub struct Pki {
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

/// One directory per test process under cargo's scratch directory for
/// integration tests; those left by processes that are gone are removed.
fn pki_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    if Path::new("/proc/self").exists() {
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("tls-pki-")) else { continue };
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    root.join(format!("tls-pki-{}", std::process::id()))
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = pki_dir();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
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
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The DER encoding of certificate `name` (`"server"`, `"client"`, ...).
    pub fn der(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(&format!("{name}.der"))).unwrap()
    }

    /// A fresh path in the PKI directory (for key logs and the like).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.path(name);
        let _ = std::fs::remove_file(&p);
        p
    }
}

/// A server configuration with certificate `name` (`"server"`, `"other"`,
/// `"expired"`) and a handshake bound so nothing hangs.
pub fn server_builder_with(name: &str) -> tls::ConfigBuilder {
    let pki = pki();
    tls::Config::builder()
        .cert_file(pki.path(&format!("{name}.pem")))
        .key_file(pki.path(&format!("{name}.key")))
        .handshake_timeout(PATIENCE)
}

/// The usual server: the localhost certificate.
pub fn server_builder() -> tls::ConfigBuilder {
    server_builder_with("server")
}

pub fn server_config() -> tls::Config {
    server_builder().build().unwrap()
}

/// A client that trusts the test CA and verifies the name `localhost`.
pub fn client_builder() -> tls::ConfigBuilder {
    tls::Config::builder().ca_file(pki().path("ca.pem")).server_name("localhost").handshake_timeout(PATIENCE)
}

pub fn client_config() -> tls::Config {
    client_builder().build().unwrap()
}

/// A TLS listener on 127.0.0.1 with a port of its own; accepts time out
/// after [`PATIENCE`].
pub fn listener(cfg: &tls::Config) -> tls::Listener {
    let l = tls::Listener::bind("127.0.0.1:0".parse().unwrap(), cfg).expect("bind a TLS listener");
    l.set_deadline(Some(soon())).unwrap();
    l
}

/// Serve `n` connections, one after the other on one thread, with `f`
/// (given the connection's index); each connection gets deadlines
/// [`PATIENCE`] away. Returns the address and what `f` returned, in order.
pub fn serve<T: Send + 'static>(
    cfg: &tls::Config,
    n: usize,
    f: impl Fn(usize, tls::Conn) -> T + Send + 'static,
) -> (SocketAddr, JoinHandle<Vec<T>>) {
    let l = listener(cfg);
    let addr = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        (0..n)
            .map(|i| {
                let c = l.accept().expect("accept");
                c.set_deadline(Some(soon())).unwrap();
                f(i, c)
            })
            .collect()
    });
    (addr, h)
}

/// Serve one connection with `f`, on a thread of its own.
pub fn serve_one<T: Send + 'static>(
    cfg: &tls::Config,
    f: impl FnOnce(tls::Conn) -> T + Send + 'static,
) -> (SocketAddr, JoinHandle<T>) {
    let l = listener(cfg);
    let addr = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let c = l.accept().expect("accept");
        c.set_deadline(Some(soon())).unwrap();
        f(c)
    });
    (addr, h)
}

/// Dial `addr` with `cfg` (whose server name is `localhost`); the
/// connection gets deadlines [`PATIENCE`] away.
pub fn dial(addr: SocketAddr, cfg: &tls::Config) -> Result<tls::Conn, tls::Error> {
    let c = tls::connect_addr(addr, cfg)?;
    c.set_deadline(Some(soon())).unwrap();
    Ok(c)
}

/// Read up to and including the first `\n` (or to end of stream).
pub fn read_line(mut r: impl Read) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while r.read(&mut b)? == 1 {
        line.push(b[0]);
        if b[0] == b'\n' {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// A child process, killed and reaped when dropped.
pub struct Proc {
    pub child: Child,
    what: String,
}

impl Proc {
    /// Start `cmd`; a missing program fails the test with a clear message.
    pub fn spawn(what: &str, cmd: &mut Command) -> Proc {
        match cmd.spawn() {
            Ok(child) => Proc { child, what: what.to_string() },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`{what}` is not installed, and this test needs it ({e}); install it with \
                 apt-get install openssl curl python3 (CI does, in .ci/run)"
            ),
            Err(e) => panic!("cannot start `{what}`: {e}"),
        }
    }

    /// Wait (at most [`PATIENCE`]) for the process to close its stdout and
    /// stderr, and then for it to exit. Panics (and so kills it) if it
    /// takes longer. Keep its stdin open until this returns if closing it
    /// early would end it too soon.
    pub fn finish(&mut self) -> (String, String, ExitStatus) {
        let (tx, rx) = mpsc::channel();
        let out = self.child.stdout.take().map(|s| drain(s, 0, tx.clone()));
        let err = self.child.stderr.take().map(|s| drain(s, 1, tx.clone()));
        drop(tx);
        let mut texts = [String::new(), String::new()];
        let expected = out.iter().count() + err.iter().count();
        let deadline = soon();
        for _ in 0..expected {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((i, text)) => texts[i] = text,
                Err(_) => panic!("`{}` did not finish within {PATIENCE:?}; output so far: {texts:?}", self.what),
            }
        }
        let status = self.child.wait().expect("wait for the child");
        let [stdout, stderr] = texts;
        (stdout, stderr, status)
    }
}

fn drain(mut r: impl Read + Send + 'static, i: usize, tx: mpsc::Sender<(usize, String)>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send((i, String::from_utf8_lossy(&buf).into_owned()));
    })
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines a child prints (both streams), as they come.
pub struct Lines {
    rx: Receiver<String>,
    all: Arc<Mutex<String>>,
}

impl Lines {
    /// Follow `proc`'s stdout and stderr (which must be piped), reading
    /// both to the end so the child never blocks on a full pipe.
    pub fn follow(proc: &mut Proc) -> Lines {
        let (tx, rx) = mpsc::channel();
        let all = Arc::new(Mutex::new(String::new()));
        if let Some(out) = proc.child.stdout.take() {
            lines(out, tx.clone(), all.clone());
        }
        if let Some(err) = proc.child.stderr.take() {
            lines(err, tx, all.clone());
        }
        Lines { rx, all }
    }

    /// Wait (at most [`PATIENCE`]) for a line that satisfies `want`.
    pub fn wait_for(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = soon();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) if want(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no {what} within {PATIENCE:?}; output:\n{}", self.output()),
                Err(RecvTimeoutError::Disconnected) => panic!("exited before {what}; output:\n{}", self.output()),
            }
        }
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        self.all.lock().unwrap().clone()
    }
}

fn lines(r: impl Read + Send + 'static, tx: mpsc::Sender<String>, all: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            all.lock().unwrap().push_str(&format!("{line}\n"));
            let _ = tx.send(line);
        }
    });
}

/// `openssl s_server -rev` (answers each line reversed) on 127.0.0.1 with
/// the localhost certificate, on a port it picks and reports itself.
pub struct SServer {
    _proc: Proc,
    lines: Lines,
    pub addr: SocketAddr,
}

impl SServer {
    pub fn start(extra: &[&str]) -> SServer {
        let pki = pki();
        let mut cmd = Command::new("openssl");
        cmd.args(["s_server", "-accept", "127.0.0.1:0", "-rev"])
            .arg("-cert")
            .arg(pki.path("server.pem"))
            .arg("-key")
            .arg(pki.path("server.key"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut proc = Proc::spawn("openssl s_server", &mut cmd);
        let lines = Lines::follow(&mut proc);
        // It prints `ACCEPT 127.0.0.1:PORT` once it listens.
        let line = lines.wait_for("ACCEPT line from s_server", |l| l.starts_with("ACCEPT "));
        let addr = line["ACCEPT ".len()..].trim().parse().unwrap_or_else(|e| panic!("s_server said {line:?}: {e}"));
        SServer { _proc: proc, lines, addr }
    }

    pub fn output(&self) -> String {
        self.lines.output()
    }
}

/// A real client gets through `l` and is echoed.
pub fn still_serves(l: &tls::Listener) {
    use std::io::Write;
    let addr = l.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut c = dial(addr, &client_config()).unwrap();
        c.write_all(b"still here").unwrap();
        let mut b = [0u8; 10];
        c.read_exact(&mut b).unwrap();
        b
    });
    let mut s = l.accept().unwrap();
    s.set_deadline(Some(soon())).unwrap();
    let mut b = [0u8; 10];
    s.read_exact(&mut b).unwrap();
    s.write_all(&b).unwrap();
    assert_eq!(&client.join().unwrap(), b"still here");
}
