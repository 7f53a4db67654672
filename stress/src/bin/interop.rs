//! The interop matrix of `make stress`: reseau's TLS client and server
//! against other TLS stacks, each started here as a process of its own on
//! loopback:
//!
//! - our client against `openssl s_server`, a Python `ssl` server and a Go
//!   `crypto/tls` server (stress/go/echoserver);
//! - `openssl s_client`, a Python `ssl` client, `curl` and a Go
//!   `crypto/tls` client (stress/go/echoclient) against our server;
//!
//! each under TLS 1.2 and TLS 1.3 (pinned on the peer's side; ours keeps
//! its defaults and must negotiate what the peer offers), and in three
//! client-certificate modes:
//!
//! - `none`: no certificate asked for or sent;
//! - `mTLS`: the server requires and verifies one, the client sends one
//!   from the CA the server trusts, and the server must have seen it;
//! - `refused`: the server requires one and the client sends none; the
//!   connection must fail, and no application byte may come back.
//!
//! A cell passes when the handshake negotiated the pinned version, a
//! known payload went through (echoed back byte for byte; reversed line by
//! line for `s_server -rev`; an HTTP POST body echoed for curl) and the
//! peer reported success; or, for `refused`, when it failed. The Go peers
//! are built here with `go build` (standard library only, GOPROXY=off).
//!
//! Prints one line per cell as it runs, then the matrix; exits 1 if any
//! cell failed. Every step is bounded by [`PATIENCE`] and every peer is
//! killed when its cell ends.

#![allow(clippy::result_large_err)]

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use testkit::child::{Lines, Proc};
use tls::{ClientAuth, Version};

/// The bound on every step of a cell: a handshake, an exchange, a peer's exit.
const PATIENCE: Duration = Duration::from_secs(20);
/// The common name of the client certificate (testkit's test PKI).
const CLIENT_CN: &str = "reseau client";
/// Bytes moved through an echoing peer in each cell.
const SIZE: usize = 256 * 1024;
/// The chunk our side writes before reading the echo back.
const CHUNK: usize = 16 * 1024;
/// Lines sent through `s_server -rev` and `s_client` (which work in lines).
const LINES: usize = 32;
const LINE_LEN: usize = 2000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ver {
    V12,
    V13,
}

impl Ver {
    fn all() -> [Ver; 2] {
        [Ver::V12, Ver::V13]
    }
    fn number(self) -> &'static str {
        match self {
            Ver::V12 => "1.2",
            Ver::V13 => "1.3",
        }
    }
    fn tls(self) -> Version {
        match self {
            Ver::V12 => Version::Tls12,
            Ver::V13 => Version::Tls13,
        }
    }
    fn openssl_flag(self) -> &'static str {
        match self {
            Ver::V12 => "-tls1_2",
            Ver::V13 => "-tls1_3",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Auth {
    None,
    Mutual,
    Refused,
}

impl Auth {
    fn all() -> [Auth; 3] {
        [Auth::None, Auth::Mutual, Auth::Refused]
    }
    fn name(self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Mutual => "mTLS",
            Auth::Refused => "refused",
        }
    }
    /// Does the server require a client certificate?
    fn required(self) -> bool {
        self != Auth::None
    }
    /// Does the client send one?
    fn sends(self) -> bool {
        self == Auth::Mutual
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Peer {
    SServer,
    PyServer,
    GoServer,
    SClient,
    PyClient,
    Curl,
    GoClient,
}

impl Peer {
    fn all() -> [Peer; 7] {
        [Peer::SServer, Peer::PyServer, Peer::GoServer, Peer::SClient, Peer::PyClient, Peer::Curl, Peer::GoClient]
    }
    fn name(self) -> &'static str {
        match self {
            Peer::SServer => "openssl s_server",
            Peer::PyServer => "python ssl server",
            Peer::GoServer => "go crypto/tls server",
            Peer::SClient => "openssl s_client",
            Peer::PyClient => "python ssl client",
            Peer::Curl => "curl",
            Peer::GoClient => "go crypto/tls client",
        }
    }
    /// The peer is a server, so the cell tests our client.
    fn is_server(self) -> bool {
        matches!(self, Peer::SServer | Peer::PyServer | Peer::GoServer)
    }
    fn ours(self) -> &'static str {
        if self.is_server() { "our client" } else { "our server" }
    }
}

/// What the run needs: certificates, the Go peers, scratch space.
struct Env {
    certs: &'static testkit::certs::Pki,
    go_server: PathBuf,
    go_client: PathBuf,
    /// The client certificate, DER.
    client_der: Vec<u8>,
}

impl Env {
    fn cert(&self, name: &str) -> PathBuf {
        self.certs.path(name)
    }
}

/// A cell's verdict: `Ok(what was seen)` or `Err(why it failed)`.
type Verdict = Result<String, String>;

fn main() {
    let started = Instant::now();
    println!("reseau interop matrix: {}", tls::openssl_version());
    for (what, cmd, args) in [
        ("openssl", "openssl", &["version"][..]),
        ("python", "python3", &["-c", "import ssl, sys; print(sys.version.split()[0], ssl.OPENSSL_VERSION)"][..]),
        ("curl", "curl", &["--version"][..]),
        ("go", "go", &["version"][..]),
    ] {
        let v = Command::new(cmd)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").to_string())
            .unwrap_or_else(|e| format!("not available: {e}"));
        println!("  {what:8} {v}");
    }
    let env = match setup() {
        Ok(env) => env,
        Err(e) => {
            eprintln!("interop: setup failed: {e}");
            std::process::exit(2);
        }
    };

    let mut cells = Vec::new();
    for peer in Peer::all() {
        for ver in Ver::all() {
            for auth in Auth::all() {
                let t = Instant::now();
                let verdict = if peer.is_server() {
                    our_client(&env, peer, ver, auth)
                } else {
                    our_server(&env, peer, ver, auth)
                };
                let took = t.elapsed();
                let (mark, text) = match &verdict {
                    Ok(s) => ("ok  ", s.as_str()),
                    Err(s) => ("FAIL", s.as_str()),
                };
                println!(
                    "[{mark}] {:10} <-> {:21} TLS {} {:7} {:6.2}s  {}",
                    peer.ours(),
                    peer.name(),
                    ver.number(),
                    auth.name(),
                    took.as_secs_f64(),
                    one_line(text)
                );
                cells.push((peer, ver, auth, verdict));
            }
        }
    }

    println!();
    let mut header = format!("| {:10} | {:20} |", "reseau", "peer");
    let mut rule = format!("| {} | {} |", "-".repeat(10), "-".repeat(20));
    for ver in Ver::all() {
        for auth in Auth::all() {
            header.push_str(&format!(" {:11} |", format!("{} {}", ver.number(), auth.name())));
            rule.push_str(&format!(" {} |", "-".repeat(11)));
        }
    }
    println!("{header}\n{rule}");
    for peer in Peer::all() {
        let mut row = format!("| {:10} | {:20} |", peer.ours(), peer.name());
        for (_, _, _, v) in cells.iter().filter(|c| c.0 == peer) {
            row.push_str(&format!(" {:11} |", if v.is_ok() { "ok" } else { "FAIL" }));
        }
        println!("{row}");
    }
    let failed = cells.iter().filter(|c| c.3.is_err()).count();
    println!(
        "\n{} passed, {} failed ({} cells in {:.1}s)",
        cells.len() - failed,
        failed,
        cells.len(),
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        std::process::exit(1);
    }
}

fn one_line(s: &str) -> String {
    let s = s.replace('\n', " | ");
    if s.len() > 400 { format!("{}...", &s[..s.char_indices().take(400).last().map_or(0, |(i, _)| i)]) } else { s }
}

/// Make the certificates and build the Go peers.
fn setup() -> io::Result<Env> {
    let certs = testkit::certs::pki();
    let der =
        Command::new("openssl").args(["x509", "-outform", "DER", "-in"]).arg(certs.path("client.pem")).output()?;
    if !der.status.success() || der.stdout.is_empty() {
        return Err(io::Error::other(format!("openssl x509: {}", String::from_utf8_lossy(&der.stderr))));
    }
    let stress = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = stress.join("../target/stress/go");
    std::fs::create_dir_all(&out)?;
    let out = out.canonicalize()?;
    let mut cmd = Command::new("go");
    cmd.args(["build", "-o"])
        .arg(&out)
        .args(["./echoserver", "./echoclient"])
        .current_dir(stress.join("go"))
        // Standard library only: nothing may be downloaded.
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", out.join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let mut p = Running::spawn("go build", &mut cmd)?;
    let (status, out_text) = p.finish(Duration::from_secs(600))?;
    if !status.success() {
        return Err(io::Error::other(format!("go build failed ({status}):\n{out_text}")));
    }
    println!("  built the Go peers in {:.1}s", t.elapsed().as_secs_f64());
    Ok(Env { certs, go_server: out.join("echoserver"), go_client: out.join("echoclient"), client_der: der.stdout })
}

// ---------------------------------------------------------------------------
// Child processes

/// A peer process (testkit's [`Proc`], killed and reaped when dropped),
/// its stdout and stderr followed line by line as they come and kept whole
/// (testkit's [`Lines`]); each wait is bounded and fails with what it
/// printed, so a cell can report it.
struct Running {
    proc: Proc,
    lines: Lines,
    what: String,
}

impl Running {
    fn spawn(what: &str, cmd: &mut Command) -> io::Result<Running> {
        let mut proc = Proc::start(what, cmd)?;
        let lines = Lines::follow(&mut proc);
        Ok(Running { proc, lines, what: what.to_string() })
    }

    /// Wait (at most [`PATIENCE`]) for a line that satisfies `want`.
    fn wait_for(&self, what: &str, want: impl Fn(&str) -> bool) -> Result<String, String> {
        self.lines.next_matching(what, PATIENCE, want).map_err(|e| format!("{}: {e}", self.what))
    }

    /// Wait for the process to close its output and exit, killing it after
    /// `patience`; returns its status and everything it printed.
    fn finish(&mut self, patience: Duration) -> io::Result<(ExitStatus, String)> {
        let out = self.lines.closed_within(patience).map_err(|e| {
            let _ = self.proc.child.kill();
            io::Error::new(io::ErrorKind::TimedOut, format!("{} did not exit: {e}", self.what))
        })?;
        Ok((self.proc.child.wait()?, out))
    }

    fn output(&self) -> String {
        self.lines.output()
    }

    fn stdout(&self) -> Vec<u8> {
        self.lines.stdout()
    }
}

/// The lines `key VALUE` a Go or Python peer printed.
fn report<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
}

// ---------------------------------------------------------------------------
// Payloads

/// The binary payload every echoing peer agrees on: byte i is
/// (i*7 + i/251) mod 256.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Text lines for the peers that work in lines.
fn text_lines() -> Vec<String> {
    (0..LINES)
        .map(|i| {
            let body: String = (0..LINE_LEN - 12).map(|j| char::from(b'a' + ((i * 31 + j) % 26) as u8)).collect();
            format!("{i:04} {body} end\n")
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Our client against a peer server

/// A peer server that reported `LISTEN`/`ACCEPT host:port`.
fn start_peer_server(env: &Env, peer: Peer, ver: Ver, auth: Auth) -> Result<(Running, SocketAddr), String> {
    let mut cmd;
    match peer {
        Peer::SServer => {
            cmd = Command::new("openssl");
            cmd.args(["s_server", "-accept", "127.0.0.1:0", "-rev", "-naccept", "1", ver.openssl_flag()])
                .arg("-cert")
                .arg(env.cert("server.pem"))
                .arg("-key")
                .arg(env.cert("server.key"));
            if auth.required() {
                cmd.args(["-Verify", "2", "-verify_return_error", "-CAfile"]).arg(env.cert("ca.pem"));
            }
        }
        Peer::PyServer => {
            cmd = Command::new("python3");
            cmd.arg("-c")
                .arg(PY_SERVER)
                .arg(env.cert("server.pem"))
                .arg(env.cert("server.key"))
                .arg(env.cert("ca.pem"))
                .arg(ver.number())
                .arg(if auth.required() { "1" } else { "0" });
        }
        Peer::GoServer => {
            cmd = Command::new(&env.go_server);
            cmd.arg("-cert")
                .arg(env.cert("server.pem"))
                .arg("-key")
                .arg(env.cert("server.key"))
                .arg("-ca")
                .arg(env.cert("ca.pem"))
                .args(["-version", ver.number(), "-timeout", &format!("{}s", PATIENCE.as_secs())]);
            if auth.required() {
                cmd.arg("-clientcert");
            }
        }
        _ => unreachable!("{peer:?} is not a server"),
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let p = Running::spawn(peer.name(), &mut cmd).map_err(|e| e.to_string())?;
    let line = p.wait_for("address", |l| l.starts_with("ACCEPT ") || l.starts_with("LISTEN "))?;
    let addr = line[7..].trim().parse().map_err(|e| format!("{}: bad address in {line:?}: {e}", peer.name()))?;
    Ok((p, addr))
}

fn our_client(env: &Env, peer: Peer, ver: Ver, auth: Auth) -> Verdict {
    let (mut p, addr) = start_peer_server(env, peer, ver, auth)?;
    let mut b = tls::Config::builder().ca_file(env.cert("ca.pem")).server_name("localhost").handshake_timeout(PATIENCE);
    if auth.sends() {
        b = b.cert_file(env.cert("client.pem")).key_file(env.cert("client.key"));
    }
    let cfg = b.build().map_err(|e| format!("config: {e}"))?;
    let exchanged = client_exchange(addr, &cfg, peer, ver);
    if auth == Auth::Refused {
        return match exchanged {
            Ok(s) => Err(format!("went through without a client certificate: {s}")),
            Err(e) => Ok(format!("refused: {e}")),
        };
    }
    let seen = exchanged.map_err(|e| format!("{e}; peer said: {}", p.output()))?;
    if peer == Peer::SServer {
        // It serves no more than this connection (-naccept 1); it has no
        // report to check beyond what came back.
        return Ok(seen);
    }
    let (status, out) = p.finish(PATIENCE).map_err(|e| e.to_string())?;
    if !status.success() || !out.lines().any(|l| l == "OK") {
        return Err(format!("{} failed ({status}): {out}", peer.name()));
    }
    // The peer may have been sent the whole chain (OpenSSL, which our
    // client uses, adds the CA to it): the leaf must be our client's.
    let certs: usize = report(&out, "PEERCERTS").and_then(|n| n.parse().ok()).unwrap_or(0);
    let leaf = report(&out, "PEERLEAF");
    let version = report(&out, "VERSION");
    let bytes = report(&out, "BYTES");
    let want_version = ver.tls().to_string();
    let want_bytes = SIZE.to_string();
    let certs_ok = if auth.sends() { certs >= 1 && leaf == Some(CLIENT_CN) } else { certs == 0 };
    if version != Some(want_version.as_str()) || bytes != Some(want_bytes.as_str()) || !certs_ok {
        return Err(format!(
            "{} saw version {version:?}, {certs} client cert(s) (leaf {leaf:?}), {bytes:?} bytes; expected {}, {}, {SIZE}",
            peer.name(),
            want_version,
            if auth.sends() { "our client's certificate" } else { "no client certificate" }
        ));
    }
    Ok(format!("{seen}; peer: {certs} client cert(s), leaf {leaf:?}, echoed {SIZE} bytes"))
}

/// Handshake, check the version, push the payload through, close_notify.
fn client_exchange(addr: SocketAddr, cfg: &tls::Config, peer: Peer, ver: Ver) -> Result<String, String> {
    let c = tls::connect_addr(addr, cfg).map_err(|e| format!("handshake: {e}"))?;
    c.set_deadline(Some(Instant::now() + PATIENCE)).map_err(|e| e.to_string())?;
    let st = c.connection_state();
    if st.version != Some(ver.tls()) {
        return Err(format!("negotiated {:?}, expected {}", st.version, ver.tls()));
    }
    let cipher = st.cipher_suite.unwrap_or_default();
    let moved = if peer == Peer::SServer {
        // s_server -rev answers each line reversed.
        let mut r = BufReader::new(&c);
        let mut n = 0;
        for line in text_lines() {
            (&c).write_all(line.as_bytes()).map_err(|e| format!("write: {e}"))?;
            let mut back = String::new();
            r.read_line(&mut back).map_err(|e| format!("read: {e}"))?;
            let want: String = line.trim_end().chars().rev().collect();
            if back.trim_end() != want {
                return Err(format!("line {} came back as {} bytes, not reversed", &line[..4], back.len()));
            }
            n += line.len();
        }
        n
    } else {
        let payload = pattern(SIZE);
        let mut back = vec![0; CHUNK];
        for (i, chunk) in payload.chunks(CHUNK).enumerate() {
            (&c).write_all(chunk).map_err(|e| format!("write: {e}"))?;
            let back = &mut back[..chunk.len()];
            (&c).read_exact(back).map_err(|e| format!("read after {} bytes: {e}", i * CHUNK))?;
            if back != chunk {
                return Err(format!("echo differs in chunk {i}"));
            }
        }
        // close_notify: the peer's echo loop sees the end and reports.
        c.close_write().map_err(|e| format!("close_write: {e}"))?;
        payload.len()
    };
    let _ = c.close();
    Ok(format!("{}, {cipher}, {moved} bytes back", ver.tls()))
}

const PY_SERVER: &str = r#"
import socket, ssl, sys
cert, key, ca, version, clientcert = sys.argv[1:6]
v = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[version]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ctx.maximum_version = v
ctx.load_cert_chain(cert, key)
if clientcert == "1":
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(ca)
srv = socket.create_server(("127.0.0.1", 0))
srv.settimeout(20)
print("LISTEN 127.0.0.1:%d" % srv.getsockname()[1], flush=True)
raw, _ = srv.accept()
raw.settimeout(20)
try:
    s = ctx.wrap_socket(raw, server_side=True)
    n = 0
    while True:
        data = s.recv(65536)
        if not data:
            break
        s.sendall(data)
        n += len(data)
    print("VERSION", s.version())
    leaf = s.getpeercert()
    print("PEERCERTS", 1 if leaf else 0)
    if leaf:
        print("PEERLEAF", dict(x[0] for x in leaf["subject"])["commonName"])
    print("BYTES", n)
    print("OK", flush=True)
    s.close()
except Exception as e:
    print("ERROR", repr(e), flush=True)
    sys.exit(1)
"#;

// ---------------------------------------------------------------------------
// A peer client against our server

/// What our server saw of one connection.
struct Served {
    version: Option<Version>,
    cipher: String,
    client_certs: usize,
    /// The first certificate the client sent is our client certificate.
    leaf_is_ours: bool,
    bytes: usize,
}

impl fmt::Display for Served {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.version.map_or("no version".to_string(), |v| v.to_string());
        let leaf = if self.leaf_is_ours { " (leaf: the client certificate)" } else { "" };
        write!(f, "{v}, {}, {} client cert(s){leaf}, {} bytes echoed", self.cipher, self.client_certs, self.bytes)
    }
}

/// Accept one connection, handshake, and echo exactly `size` bytes (for
/// curl: answer one POST with its body), then close with close_notify.
fn serve(l: &tls::Listener, size: usize, http: bool, client_der: &[u8]) -> Result<Served, String> {
    let c = l.accept().map_err(|e| format!("accept: {e}"))?;
    c.set_deadline(Some(Instant::now() + PATIENCE)).map_err(|e| e.to_string())?;
    c.handshake().map_err(|e| format!("handshake: {e}"))?;
    let st = c.connection_state();
    let mut served = Served {
        version: st.version,
        cipher: st.cipher_suite.unwrap_or_default(),
        client_certs: st.peer_certificates.len(),
        leaf_is_ours: st.peer_certificates.first().is_some_and(|c| c == client_der),
        bytes: 0,
    };
    let mut buf = vec![0; 64 * 1024];
    if http {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            if (&c).read(&mut b).map_err(|e| format!("read the request: {e}"))? == 0 {
                return Err(format!("end of stream inside the request head: {:?}", String::from_utf8_lossy(&head)));
            }
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
            })
            .ok_or_else(|| format!("no Content-Length in {head:?}"))?;
        if !head.starts_with("POST /echo HTTP/1.1\r\n") {
            return Err(format!("unexpected request {head:?}"));
        }
        let mut body = vec![0; len];
        (&c).read_exact(&mut body).map_err(|e| format!("read the body: {e}"))?;
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        );
        (&c).write_all(reply.as_bytes()).map_err(|e| format!("write: {e}"))?;
        (&c).write_all(&body).map_err(|e| format!("write: {e}"))?;
        served.bytes = len;
    } else {
        while served.bytes < size {
            let want = buf.len().min(size - served.bytes);
            let n = (&c).read(&mut buf[..want]).map_err(|e| format!("read after {} bytes: {e}", served.bytes))?;
            if n == 0 {
                return Err(format!("end of stream after {} of {size} bytes", served.bytes));
            }
            (&c).write_all(&buf[..n]).map_err(|e| format!("write: {e}"))?;
            served.bytes += n;
        }
    }
    c.close().map_err(|e| format!("close: {e}"))?;
    Ok(served)
}

fn our_server(env: &Env, peer: Peer, ver: Ver, auth: Auth) -> Verdict {
    let mut b = tls::Config::builder()
        .cert_file(env.cert("server.pem"))
        .key_file(env.cert("server.key"))
        .handshake_timeout(PATIENCE);
    if auth.required() {
        b = b.client_auth(ClientAuth::RequireAndVerifyClientCert).client_ca_file(env.cert("ca.pem"));
    }
    if peer == Peer::Curl {
        b = b.alpn_protocols(["http/1.1"]);
    }
    let cfg = b.build().map_err(|e| format!("config: {e}"))?;
    let l = tls::Listener::bind("127.0.0.1:0".parse().unwrap(), &cfg).map_err(|e| format!("listen: {e}"))?;
    l.set_deadline(Some(Instant::now() + PATIENCE)).map_err(|e| e.to_string())?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    let lines: String = text_lines().concat();
    let size = if peer == Peer::SClient { lines.len() } else { SIZE };
    let client_der = env.client_der.clone();
    let server = thread::spawn(move || serve(&l, size, peer == Peer::Curl, &client_der));

    let client = run_peer_client(env, peer, ver, auth, addr, &lines);
    let served = server.join().map_err(|_| "our server thread panicked".to_string())?;
    if auth == Auth::Refused {
        return match (served, client) {
            (Err(e), Err(_)) => Ok(format!("refused: {e}")),
            (Ok(s), _) => Err(format!("served a client without a certificate: {s}")),
            (Err(e), Ok(c)) => Err(format!("our server failed ({e}) but {} says it succeeded: {c}", peer.name())),
        };
    }
    let served =
        served.map_err(|e| format!("our server: {e}; {}: {}", peer.name(), client.clone().unwrap_or_else(|c| c)))?;
    let client = client?;
    // OpenSSL-based clients send the whole chain (leaf and CA): the leaf
    // must be the client certificate.
    let certs_ok =
        if auth.sends() { served.client_certs >= 1 && served.leaf_is_ours } else { served.client_certs == 0 };
    if served.version != Some(ver.tls()) || served.bytes != size || !certs_ok {
        return Err(format!(
            "our server saw {served}; expected {}, {}, {size} bytes",
            ver.tls(),
            if auth.sends() { "the client certificate first" } else { "no client certificate" }
        ));
    }
    Ok(format!("{served}; peer: {client}"))
}

/// Run the peer client to its end; `Ok` with what it reported if it
/// verified us and got every byte back.
fn run_peer_client(
    env: &Env,
    peer: Peer,
    ver: Ver,
    auth: Auth,
    addr: SocketAddr,
    lines: &str,
) -> Result<String, String> {
    let port = addr.port().to_string();
    let scratch = env.certs.dir.join(format!("{peer:?}-{ver:?}-{auth:?}"));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let mut cmd;
    match peer {
        Peer::SClient => {
            let input = scratch.join("input.txt");
            std::fs::write(&input, lines).map_err(|e| e.to_string())?;
            cmd = Command::new("openssl");
            // -quiet: only the application data on stdout; -ign_eof (implied)
            // keeps it reading after its input ends, until our close.
            cmd.args(["s_client", "-connect", &addr.to_string(), "-servername", "localhost", "-quiet"])
                .args(["-verify_return_error", "-verify_hostname", "localhost", ver.openssl_flag()])
                .arg("-CAfile")
                .arg(env.cert("ca.pem"));
            if auth.sends() {
                cmd.arg("-cert").arg(env.cert("client.pem")).arg("-key").arg(env.cert("client.key"));
            }
            cmd.stdin(std::fs::File::open(&input).map_err(|e| e.to_string())?);
        }
        Peer::PyClient => {
            cmd = Command::new("python3");
            cmd.arg("-c").arg(PY_CLIENT).arg(env.cert("ca.pem")).arg(&port).arg(ver.number()).arg(SIZE.to_string());
            if auth.sends() {
                cmd.arg(env.cert("client.pem")).arg(env.cert("client.key"));
            }
            cmd.stdin(Stdio::null());
        }
        Peer::Curl => {
            std::fs::write(scratch.join("payload.bin"), pattern(SIZE)).map_err(|e| e.to_string())?;
            cmd = Command::new("curl");
            let (min, max) = match ver {
                Ver::V12 => ("--tlsv1.2", "1.2"),
                Ver::V13 => ("--tlsv1.3", "1.3"),
            };
            cmd.args(["--silent", "--show-error", "--fail", "--max-time", &PATIENCE.as_secs().to_string()])
                .args([min, "--tls-max", max, "--http1.1"])
                .arg("--cacert")
                .arg(env.cert("ca.pem"))
                .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
                .args(["-H", "Expect:", "-H", "Content-Type: application/octet-stream"])
                .args(["--data-binary", "@payload.bin", "--output", "echo.bin"])
                .args(["--write-out", "%{http_code} %{http_version} verify=%{ssl_verify_result}"]);
            if auth.sends() {
                cmd.arg("--cert").arg(env.cert("client.pem")).arg("--key").arg(env.cert("client.key"));
            }
            cmd.arg(format!("https://localhost:{port}/echo")).current_dir(&scratch).stdin(Stdio::null());
        }
        Peer::GoClient => {
            cmd = Command::new(&env.go_client);
            cmd.args(["-addr", &addr.to_string(), "-servername", "localhost", "-version", ver.number()])
                .args(["-size", &SIZE.to_string(), "-timeout", &format!("{}s", PATIENCE.as_secs())])
                .arg("-ca")
                .arg(env.cert("ca.pem"));
            if auth.sends() {
                cmd.arg("-cert").arg(env.cert("client.pem")).arg("-key").arg(env.cert("client.key"));
            }
            cmd.stdin(Stdio::null());
        }
        _ => unreachable!("{peer:?} is not a client"),
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut p = Running::spawn(peer.name(), &mut cmd).map_err(|e| e.to_string())?;
    let (status, out) = p.finish(PATIENCE + Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let verdict = match peer {
        Peer::SClient => {
            let got = p.stdout();
            if got != lines.as_bytes() {
                Err(format!(
                    "s_client printed {} bytes, not the {} sent ({status}): {}",
                    got.len(),
                    lines.len(),
                    tail(&out)
                ))
            } else {
                Ok(format!("s_client got {} bytes back ({status})", got.len()))
            }
        }
        Peer::Curl => {
            let echo = std::fs::read(scratch.join("echo.bin")).unwrap_or_default();
            if !status.success() || out.trim() != "200 1.1 verify=0" || echo != pattern(SIZE) {
                Err(format!("curl ({status}) said {:?} and got {} of {SIZE} bytes", out.trim(), echo.len()))
            } else {
                Ok(format!("curl: {}, {} bytes back", out.trim(), echo.len()))
            }
        }
        _ => {
            let want = ver.tls().to_string();
            if status.success()
                && out.lines().any(|l| l == "OK")
                && report(&out, "VERSION") == Some(want.as_str())
                && report(&out, "BYTES") == Some(SIZE.to_string().as_str())
            {
                Ok(format!("{want}, {} bytes back", SIZE))
            } else {
                Err(format!("{} ({status}): {}", peer.name(), tail(&out)))
            }
        }
    };
    let _ = std::fs::remove_dir_all(&scratch);
    verdict
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(6)..].join(" | ")
}

const PY_CLIENT: &str = r#"
import socket, ssl, sys
ca, port, version, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
v = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[version]
ctx = ssl.create_default_context(cafile=ca)
ctx.minimum_version = ctx.maximum_version = v
if len(sys.argv) > 6:
    ctx.load_cert_chain(sys.argv[5], sys.argv[6])
payload = bytes((i * 7 + i // 251) & 255 for i in range(size))
try:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            back = bytearray()
            for off in range(0, size, 16384):
                chunk = payload[off:off + 16384]
                s.sendall(chunk)
                want = len(back) + len(chunk)
                while len(back) < want:
                    data = s.recv(want - len(back))
                    if not data:
                        raise EOFError("end of stream after %d bytes" % len(back))
                    back += data
            if bytes(back) != payload:
                raise ValueError("the echo differs from what was sent")
            print("VERSION", s.version())
            print("BYTES", len(back))
            print("OK", flush=True)
except Exception as e:
    print("ERROR", repr(e), flush=True)
    sys.exit(1)
"#;
