//! Child processes a test starts as peers (openssl, curl, python3, go, the
//! examples): [`Proc`] kills and reaps its child when dropped, [`Lines`]
//! follows its output line by line as it comes, and [`SServer`] is
//! `openssl s_server` on a port it picks and reports.

use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::PATIENCE;
use crate::certs::pki;

/// `openssl s_client -connect ADDR -CAfile <the test CA>` with `args`
/// after them, run to the end with its input closed: its stdout and stderr
/// together.
pub fn s_client(addr: SocketAddr, args: &[&str]) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string(), "-CAfile"])
        .arg(pki().path("ca.pem"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (out, err, _) = Proc::spawn("openssl s_client", &mut cmd).finish();
    format!("{out}\n{err}")
}

/// A child process, killed and reaped when dropped.
#[derive(Debug)]
pub struct Proc {
    /// The child; take its pipes to talk to it.
    pub child: Child,
    what: String,
}

impl Proc {
    /// Start `cmd`; a missing program fails the test with a clear message.
    pub fn spawn(what: &str, cmd: &mut Command) -> Proc {
        Proc::start(what, cmd).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Start `cmd`, or say why it could not start (for a missing program:
    /// that it is missing, and how to install it).
    pub fn start(what: &str, cmd: &mut Command) -> io::Result<Proc> {
        match cmd.spawn() {
            Ok(child) => Ok(Proc { child, what: what.to_string() }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io::Error::new(
                e.kind(),
                format!(
                    "`{what}` is not installed, and this needs it ({e}); install it with `make deps` \
                     (apt-get install openssl curl python3 socat; golang-go for the Go peers)"
                ),
            )),
            Err(e) => Err(io::Error::new(e.kind(), format!("cannot start `{what}`: {e}"))),
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
        let deadline = Instant::now() + PATIENCE;
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
#[derive(Debug)]
pub struct Lines {
    rx: Receiver<String>,
    all: Arc<Mutex<String>>,
    stdout: Arc<Mutex<Vec<u8>>>,
}

impl Lines {
    /// Follow `proc`'s stdout and stderr (which must be piped), reading
    /// both to the end so the child never blocks on a full pipe.
    pub fn follow(proc: &mut Proc) -> Lines {
        let (tx, rx) = mpsc::channel();
        let all = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = proc.child.stdout.take() {
            lines(out, tx.clone(), all.clone(), Some(stdout.clone()));
        }
        if let Some(err) = proc.child.stderr.take() {
            lines(err, tx, all.clone(), None);
        }
        Lines { rx, all, stdout }
    }

    /// Wait (at most [`PATIENCE`]) for a line that satisfies `want`.
    pub fn wait_for(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        self.next_matching(what, PATIENCE, want).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Wait at most `patience` for a line that satisfies `want`; an error
    /// says what was printed instead.
    pub fn next_matching(&self, what: &str, patience: Duration, want: impl Fn(&str) -> bool) -> Result<String, String> {
        let deadline = Instant::now() + patience;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) if want(&line) => return Ok(line),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("no {what} within {patience:?}; output:\n{}", self.output()));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("exited before {what}; output:\n{}", self.output()));
                }
            }
        }
    }

    /// Wait (at most [`PATIENCE`]) for both streams to close, and return
    /// everything printed.
    pub fn to_end(&self) -> String {
        self.closed_within(PATIENCE).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Wait at most `patience` for both streams to close, and return
    /// everything printed; an error says what was printed so far.
    pub fn closed_within(&self, patience: Duration) -> Result<String, String> {
        let deadline = Instant::now() + patience;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(self.output()),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("output still open after {patience:?}; so far:\n{}", self.output()));
                }
            }
        }
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        self.all.lock().unwrap().clone()
    }

    /// The bytes of stdout so far, exactly as printed.
    pub fn stdout(&self) -> Vec<u8> {
        self.stdout.lock().unwrap().clone()
    }
}

/// Read `r` to its end, line by line: each line whole into `all` (and its
/// bytes into `raw`), and without its line ending to `tx`.
fn lines(
    r: impl Read + Send + 'static,
    tx: mpsc::Sender<String>,
    all: Arc<Mutex<String>>,
    raw: Option<Arc<Mutex<Vec<u8>>>>,
) {
    std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut line = Vec::new();
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if let Some(raw) = &raw {
                raw.lock().unwrap().extend_from_slice(&line);
            }
            let text = String::from_utf8_lossy(&line);
            all.lock().unwrap().push_str(&text);
            let _ = tx.send(text.trim_end_matches('\n').trim_end_matches('\r').to_string());
        }
    });
}

/// `openssl s_server -rev` (answers each line reversed), or `-www`, on 127.0.0.1 with
/// the [`pki`]'s localhost certificate, on a port it picks and reports.
#[derive(Debug)]
pub struct SServer {
    _proc: Proc,
    lines: Lines,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl SServer {
    /// Start it with `extra` arguments (`-tls1_3`, `-alpn h2`, ...), and
    /// wait until it listens.
    pub fn start(extra: &[&str]) -> SServer {
        SServer::launch("-rev", extra)
    }

    /// Start it as `-www`: it answers a `GET` with an HTTP/1.0 page that
    /// describes the session.
    pub fn www() -> SServer {
        SServer::launch("-www", &[])
    }

    fn launch(mode: &str, extra: &[&str]) -> SServer {
        let pki = pki();
        let mut cmd = Command::new("openssl");
        cmd.args(["s_server", "-accept", "127.0.0.1:0", mode])
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

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.lines.output()
    }
}
