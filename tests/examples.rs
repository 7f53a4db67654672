//! A smoke run of every example in examples/: each runs as the program it
//! is, with bounded arguments, and must exit 0 having printed what it
//! promises. Examples that serve until stopped (echo_server) are run with
//! their client and stopped by the test.
//!
//! The binaries are the ones cargo built beside this test: `cargo test -p
//! reseau` builds the examples before it runs the tests, and no test runs
//! cargo itself. `cargo test -p reseau --test examples` alone builds no
//! example, so a binary older than its sources fails the run with the
//! command that rebuilds them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use testkit::certs::pki;
use testkit::child::{Lines, Proc, SServer};

/// The examples this file runs; `every_example_is_smoked` holds it to the
/// list in crates/reseau/Cargo.toml and the files in examples/.
const SMOKED: &[&str] = &[
    "custom_loop",
    "demo",
    "echo_client",
    "echo_server",
    "fetch",
    "green_echo",
    "happy_eyeballs",
    "http_server",
    "hyper_server",
    "tls_echo",
    "tls_graceful",
    "worker_pool",
];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// When `path` was last modified; the newest file under it for a directory.
fn modified(path: &Path) -> SystemTime {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if !meta.is_dir() {
        return meta.modified().unwrap();
    }
    std::fs::read_dir(path)
        .unwrap()
        .map(|entry| modified(&entry.unwrap().path()))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The built example `name`, which must be newer than its source, the
/// examples' support files and every reseau crate's sources.
fn example(name: &str) -> Command {
    // This test is target/<profile>/deps/examples-<hash>; cargo puts the
    // examples in target/<profile>/examples/.
    let me = std::env::current_exe().unwrap();
    let bin = me.parent().and_then(Path::parent).unwrap().join("examples").join(name);
    let rebuild = "cargo test -p reseau builds the examples before the tests; alone, build them with \
                   `cargo build -p reseau --examples`";
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("example {name} is not built ({}: {e}); {rebuild}", bin.display()));
    let root = repository();
    let sources = ["iopoll", "tcp", "tls", "green", "reseau"].map(|c| root.join("crates").join(c).join("src"));
    for source in
        sources.iter().chain([&root.join("examples").join(format!("{name}.rs")), &root.join("examples/support")])
    {
        assert!(modified(source) <= built, "example {name} is older than {}; {rebuild}", source.display());
    }
    let mut cmd = Command::new(bin);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Run example `name` with `args` to its end: it must exit 0, and its
/// output (both streams) must contain each of `prints`. Returns stdout.
fn smoke(name: &str, args: &[&str], prints: &[&str]) -> String {
    let mut cmd = example(name);
    cmd.args(args);
    let (out, err, status) = Proc::spawn(name, &mut cmd).finish();
    assert!(status.success(), "{name} {args:?} exited with {status}:\n{out}\n{err}");
    for want in prints {
        assert!(out.contains(want) || err.contains(want), "{name} {args:?} did not print {want:?}:\n{out}\n{err}");
    }
    out
}

#[test]
fn every_example_is_smoked() {
    let root = repository();
    let manifest = std::fs::read_to_string(root.join("crates/reseau/Cargo.toml")).unwrap();
    // Each `[[example]]` table starts with its `name = "..."` line.
    let mut declared: Vec<&str> = manifest
        .split("[[example]]")
        .skip(1)
        .map(|table| table.trim_start().strip_prefix("name = \"").and_then(|t| t.split('"').next()).unwrap())
        .collect();
    declared.sort_unstable();
    assert_eq!(declared, SMOKED, "the examples crates/reseau/Cargo.toml declares");
    let mut files: Vec<String> = std::fs::read_dir(root.join("examples"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".rs").map(str::to_string))
        .collect();
    files.sort_unstable();
    assert_eq!(files, SMOKED, "the programs in examples/");
}

#[test]
fn demo() {
    smoke("demo", &[], &["all steps passed"]);
}

#[test]
fn custom_loop() {
    smoke("custom_loop", &[], &["served 8 connections (half of them TLS)"]);
}

#[test]
fn happy_eyeballs_on_loopback() {
    // A name resolving to a black-holed [::1] and a listening 127.0.0.1.
    smoke("happy_eyeballs", &["--delay-ms", "50"], &["fallbacks (start after 50ms", "connected to 127.0.0.1:"]);
}

#[test]
fn tls_echo() {
    smoke("tls_echo", &[], &["client presented 0 certificate(s)", "echo: hello", "echo: on memory BIOs"]);
}

#[test]
fn tls_echo_with_mutual_tls() {
    smoke("tls_echo", &["--mtls"], &["(mutual TLS)", "echo: on memory BIOs"]);
}

#[test]
fn tls_graceful() {
    smoke(
        "tls_graceful",
        &[],
        &[
            "client 2 got: request 2",
            "shutdown: stopped accepting",
            "shutdown: 3 connection(s) seen",
            "shutdown: every handler returned",
            "shutdown: closed 1 connection(s) left open",
            "quiet client: connection ended",
            "shutdown complete",
        ],
    );
}

#[test]
fn green_echo() {
    smoke("green_echo", &["200"], &["200 connections echoed", "0 failed"]);
}

#[test]
fn worker_pool() {
    let args = ["--workers", "4", "--clients", "16", "--requests", "20"];
    smoke(
        "worker_pool",
        &args,
        &["4 workers serving 16 clients x 20 requests", "320 requests in", "0 client(s) failed"],
    );
}

#[test]
fn echo_client_against_echo_server() {
    // echo_server serves until stopped: it runs beside the client, and is
    // killed (Proc's drop) once it reported the connection.
    let mut cmd = example("echo_server");
    cmd.arg("127.0.0.1:0");
    let mut server = Proc::spawn("echo_server", &mut cmd);
    let lines = Lines::follow(&mut server);
    let listening = lines.wait_for("echo_server's address", |l| l.starts_with("echo server on "));
    let addr = listening["echo server on ".len()..].split(' ').next().unwrap().to_string();
    let out = smoke("echo_client", &[&addr, "smoke over loopback"], &["connected to 127.0.0.1:"]);
    assert!(out.contains("echo: smoke over loopback"), "{out}");
    lines.wait_for("echo_server's report", |l| l.ends_with(": done, 19 bytes echoed"));
}

#[test]
fn hyper_server_answers_curl() {
    // hyper on tokio over reseau::tls; curl (a real HTTP/1.1 client over
    // OpenSSL) verifies the test PKI's localhost certificate.
    let pki = pki();
    let mut cmd = example("hyper_server");
    let (cert, key) = (pki.path("server.pem"), pki.path("server.key"));
    cmd.args(["--connections", "2", "--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()]);
    let mut server = Proc::spawn("hyper_server", &mut cmd);
    let lines = Lines::follow(&mut server);
    let serving = lines.wait_for("hyper_server's address", |l| l.starts_with("serving https://"));
    let port = serving["serving https://127.0.0.1:".len()..].split('/').next().unwrap().to_string();
    let url = |path: &str| format!("https://localhost:{port}{path}");
    let curl = |args: &[&str]| {
        let mut cmd = Command::new("curl");
        cmd.args(["--silent", "--show-error", "--http1.1", "--max-time", "10", "--cacert"])
            .arg(pki.path("ca.pem"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (out, err, status) = Proc::spawn("curl", &mut cmd).finish();
        assert!(status.success(), "curl {args:?}: {status}\n{out}\n{err}");
        out
    };
    let hello = curl(&[&url("/")]);
    assert!(hello.starts_with("hello from reseau, TLSv1."), "GET /: {hello:?}");
    let echoed = curl(&["--data-binary", "over hyper, tokio and reseau::tls", &url("/echo")]);
    assert_eq!(echoed, "over hyper, tokio and reseau::tls");
    lines.wait_for("hyper_server's report", |l| l == "served 2 connection(s), 0 failed");
    let status = server.child.wait().unwrap();
    assert!(status.success(), "hyper_server exited with {status}:\n{}", lines.output());
}

#[test]
fn fetch_from_s_server() {
    // `openssl s_server -www` answers any GET with a page about the session.
    let pki = pki();
    let server = SServer::www();
    let port = server.addr.port();
    let ca = pki.path("ca.pem");
    let url = format!("https://localhost:{port}/");
    let out = smoke("fetch", &["--ca", ca.to_str().unwrap(), "--timeout", "10", &url], &["HTTP/1.0 200 ok"]);
    assert!(out.contains("<HTML>") && out.contains("Ciphers supported in s_server binary"), "the page:\n{out}");
}

/// Everything `request` draws from a fresh connection to `addr`, read to
/// the server's close.
fn exchange(addr: &str, request: &[u8]) -> String {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(testkit::PATIENCE)).unwrap();
    c.write_all(request).unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap_or_else(|e| panic!("{request:?}: {e}; read so far: {answer:?}"));
    answer
}

#[test]
fn http_server_with_curl_and_raw_requests() {
    let mut cmd = example("http_server");
    cmd.arg("127.0.0.1:0");
    let mut server = Proc::spawn("http_server", &mut cmd);
    let lines = Lines::follow(&mut server);
    let listening = lines.wait_for("http_server's address", |l| l.starts_with("listening on "));
    let addr = listening["listening on ".len()..].trim().to_string();

    // Two URLs in one curl: the second request reuses the connection
    // (`num_connects` counts the connections each transfer opened).
    let (a, b) = (format!("http://{addr}/"), format!("http://{addr}/again"));
    let mut curl = Command::new("curl");
    curl.args(["-sS", "--max-time", "10", "-w", " connects=%{num_connects}\\n", &a, &b]);
    curl.stdout(Stdio::piped()).stderr(Stdio::piped());
    let (out, err, status) = Proc::spawn("curl", &mut curl).finish();
    assert!(status.success(), "curl exited with {status}:\n{err}");
    assert_eq!(out, "Hello, World! connects=1\nHello, World! connects=0\n", "curl's output and connections");

    // A pipelined pair on one connection: two answers, in order; the
    // second asked to close.
    let answer =
        exchange(&addr, b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let answers: Vec<&str> = answer.split("HTTP/1.1 200 OK\r\n").collect();
    assert_eq!(answers.len(), 3, "two answers: {answer:?}");
    assert!(
        answers[1].contains("Content-Length: 13\r\n") && answers[1].ends_with("\r\n\r\nHello, World!"),
        "{answer:?}"
    );
    assert!(answers[2].contains("Connection: close\r\n") && answers[2].ends_with("Hello, World!"), "{answer:?}");

    // HTTP/1.0 without keep-alive: answered, then closed.
    let answer = exchange(&addr, b"GET / HTTP/1.0\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("Hello, World!"), "{answer:?}");
    // Garbage: 400, then closed.
    let answer = exchange(&addr, b"\x01\x02 garbage\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer:?}");
    // A head larger than the server's buffer: 431, then closed.
    let mut huge = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    huge.extend([b'a'; 20_000]);
    huge.extend(b"\r\n\r\n");
    let answer = exchange(&addr, &huge);
    assert!(answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{answer:?}");

    // SIGTERM: the server stops, and exits 0.
    // SAFETY: kill sends a signal to the child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(server.child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let status = server.child.wait().unwrap();
    assert!(status.success(), "http_server exited with {status}:\n{}", lines.to_end());
    assert!(lines.to_end().contains("stopping"), "{}", lines.output());
}
