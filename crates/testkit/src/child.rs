//! Child processes a test starts as peers (openssl, curl, python3, go, the
//! examples): [`Proc`] kills and reaps its child when dropped, [`Lines`]
//! follows its output line by line as it comes, and [`SServer`] is
//! `openssl s_server` on a port it picks and reports.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::PATIENCE;
use crate::certs::pki;

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
        match cmd.spawn() {
            Ok(child) => Proc { child, what: what.to_string() },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`{what}` is not installed, and this test needs it ({e}); install it with \
                 `make deps` (apt-get install openssl curl python3 golang-go)"
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
        let deadline = Instant::now() + PATIENCE;
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

    /// Wait (at most [`PATIENCE`]) for both streams to close, and return
    /// everything printed.
    pub fn to_end(&self) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => return self.output(),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("output still open after {PATIENCE:?}; so far:\n{}", self.output())
                }
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

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.lines.output()
    }
}
