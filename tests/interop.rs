//! Interoperability end to end: TLS over TCP over the reactor against other
//! TLS stacks, started by the tests themselves on loopback: our client
//! against `openssl s_server` and Go's `crypto/tls`, and `openssl
//! s_client`, Python's `ssl` module, `curl` and Go against our server. The
//! tools must be installed (`make deps` installs them); a missing one fails
//! the test with a clear message.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

use std::any::Any;
use std::io::{Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;

use reseau::tls::{self, Version};
use testkit::PATIENCE;
use testkit::certs::pki;
use testkit::child::{Lines, Proc, SServer};
use testkit::tls_peer::{client_builder, dial, serve_one, server_builder};
use testkit::{read_line, scratch_dir, stream_bytes};

/// s_server -rev answers each line reversed.
fn exchange_with_rev(c: &tls::Conn) {
    let mut w = c;
    w.write_all(b"hello reseau\n").unwrap();
    assert_eq!(read_line(c).unwrap(), "uaeser olleh\n");
    // A longer line (s_server -rev reads lines of up to 16 KiB).
    let line: String = (0..12_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    w.write_all(format!("{line}\n").as_bytes()).unwrap();
    let back = read_line(c).unwrap();
    let want: String = line.chars().rev().collect();
    assert!(back.trim_end() == want, "a 12000-byte line reversed, got {} bytes back", back.len());
}

/// Run every case of `cases` with `run`, each on its own, and fail naming
/// each case that failed, with its message.
fn run_table<C>(cases: &[C], name: impl Fn(&C) -> &str, run: impl Fn(&C)) {
    let failed: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| run(case)));
            outcome.err().map(|e| format!("{}: {}", name(case), message(&*e)))
        })
        .collect();
    assert!(failed.is_empty(), "{} of {} cases failed:\n{}", failed.len(), cases.len(), failed.join("\n"));
}

/// What a panic said.
fn message(payload: &(dyn Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => "(a panic without a message)".into(),
    }
}

/// Our client dials `openssl s_server -rev`, started with some arguments.
struct SServerCase {
    name: &'static str,
    s_server_args: &'static [&'static str],
    client: fn() -> tls::Config,
    version: Version,
    alpn: Option<&'static str>,
    /// How the negotiated cipher suite's name starts.
    cipher_prefix: &'static str,
}

#[test]
fn client_against_s_server() {
    let offers_h2_and_http11 = || client_builder().alpn_protocols(["http/1.1", "h2"]).build().unwrap();
    let cases = [
        SServerCase {
            name: "TLS 1.2 with ALPN",
            s_server_args: &["-tls1_2", "-alpn", "h2"],
            client: offers_h2_and_http11,
            version: Version::Tls12,
            alpn: Some("h2"),
            // A TLS 1.2 suite with the EC server key.
            cipher_prefix: "ECDHE-ECDSA-",
        },
        SServerCase {
            name: "TLS 1.3 with ALPN",
            s_server_args: &["-tls1_3", "-alpn", "h2"],
            client: offers_h2_and_http11,
            version: Version::Tls13,
            alpn: Some("h2"),
            cipher_prefix: "TLS_",
        },
        SServerCase {
            // The server knows no ALPN: the client's offer is ignored.
            name: "TLS 1.3, server without ALPN",
            s_server_args: &["-tls1_3"],
            client: || client_builder().alpn_protocols(["h2"]).build().unwrap(),
            version: Version::Tls13,
            alpn: None,
            cipher_prefix: "TLS_",
        },
    ];
    run_table(
        &cases,
        |case| case.name,
        |case| {
            let s = SServer::start(case.s_server_args);
            let c = dial(s.addr, &(case.client)()).unwrap_or_else(|e| panic!("dial s_server: {e}\n{}", s.output()));
            let st = c.connection_state();
            assert!(st.handshake_complete);
            assert_eq!(st.version, Some(case.version));
            assert_eq!(st.alpn_protocol.as_deref(), case.alpn);
            let cipher = st.cipher_suite.clone().expect("a cipher suite");
            assert!(cipher.starts_with(case.cipher_prefix), "want a {}* suite, got {cipher}", case.cipher_prefix);
            assert_eq!(st.server_name.as_deref(), Some("localhost"));
            assert_eq!(st.peer_certificates.first(), Some(&pki().der("server")), "leaf first");
            assert!(!st.session_resumed);
            exchange_with_rev(&c);
        },
    );
}

#[test]
fn client_resumes_with_s_server() {
    for (flag, max) in [("-tls1_3", Version::Tls13), ("-tls1_2", Version::Tls12)] {
        let s = SServer::start(&[flag]);
        let cfg = client_builder().max_version(max).build().unwrap();
        let first = dial(s.addr, &cfg).unwrap_or_else(|e| panic!("dial s_server: {e}\n{}", s.output()));
        // Reading processes the TLS 1.3 tickets sent after the handshake.
        exchange_with_rev(&first);
        assert!(!first.connection_state().session_resumed);
        first.close().unwrap();
        let second = dial(s.addr, &cfg).unwrap();
        exchange_with_rev(&second);
        let st = second.connection_state();
        assert_eq!(st.version, Some(max));
        assert!(st.session_resumed, "{max}: second dial with the same Config resumes");
    }
}

/// One step of an `s_client` session: what goes to its stdin, the line our
/// server then reads (none for s_client's own commands, such as `K`), our
/// answer, and the line s_client prints once the step is done.
struct Step {
    send: &'static str,
    server_reads: Option<&'static str>,
    server_answers: &'static str,
    s_client_prints: &'static str,
}

/// A line through s_client and its answer back.
const fn line(send: &'static str, answer: &'static str) -> Step {
    Step { send, server_reads: Some(send), server_answers: answer, s_client_prints: answer.trim_ascii_end() }
}

/// `openssl s_client` against our server.
struct SClientCase {
    name: &'static str,
    /// s_client's arguments besides `-connect`; `{pki}/` stands for the
    /// test PKI's directory.
    s_client_args: &'static [&'static str],
    server: fn() -> tls::Config,
    steps: &'static [Step],
    version: Version,
    /// The certificate the client presented (by PKI name), if any.
    client_certificate: Option<&'static str>,
}

const S_CLIENT_CASES: &[SClientCase] = &[
    SClientCase {
        name: "verifying the hostname",
        s_client_args: &[
            "-servername",
            "localhost",
            "-verify_return_error",
            "-verify_hostname",
            "localhost",
            "-CAfile",
            "{pki}/ca.pem",
        ],
        server: || server_builder().build().unwrap(),
        steps: &[line("hello from s_client\n", "hello from reseau\n")],
        version: Version::Tls13,
        client_certificate: None,
    },
    SClientCase {
        name: "with a client certificate, TLS 1.2",
        s_client_args: &[
            "-servername",
            "localhost",
            "-verify_return_error",
            "-CAfile",
            "{pki}/ca.pem",
            "-cert",
            "{pki}/client.pem",
            "-key",
            "{pki}/client.key",
        ],
        server: || {
            server_builder()
                .client_auth(tls::ClientAuth::RequireAndVerifyClientCert)
                .client_ca_file(pki().path("ca.pem"))
                .max_version(Version::Tls12)
                .build()
                .unwrap()
        },
        steps: &[line("hello from a client with a certificate\n", "hello, client\n")],
        version: Version::Tls12,
        client_certificate: Some("client"),
    },
    SClientCase {
        // s_client's "K" command sends a KeyUpdate that asks for one
        // back: our server must answer it from inside a read and keep
        // both directions going.
        name: "KeyUpdate",
        s_client_args: &["-servername", "localhost", "-verify_return_error", "-CAfile", "{pki}/ca.pem"],
        server: || server_builder().build().unwrap(),
        steps: &[
            line("one\n", "first answer\n"),
            Step { send: "K\n", server_reads: None, server_answers: "", s_client_prints: "KEYUPDATE" },
            line("two\n", "second answer\n"),
        ],
        version: Version::Tls13,
        client_certificate: None,
    },
];

#[test]
fn s_client_against_our_server() {
    run_table(S_CLIENT_CASES, |case| case.name, s_client_case);
}

fn s_client_case(case: &SClientCase) {
    let pki = pki();
    let steps = case.steps;
    let (addr, server) = serve_one(&(case.server)(), move |c| {
        c.handshake().expect("handshake with s_client");
        let mut read = Vec::new();
        for step in steps {
            if step.server_reads.is_some() {
                read.push(read_line(&c).unwrap());
                (&c).write_all(step.server_answers.as_bytes()).unwrap();
            }
        }
        let st = c.connection_state();
        c.close().unwrap();
        (read, st)
    });
    let dir = pki.dir.to_str().expect("a UTF-8 PKI path");
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string()])
        .args(case.s_client_args.iter().map(|a| a.replace("{pki}", dir)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn("openssl s_client", &mut cmd);
    // Keep stdin open until s_client is done: its end of input would end
    // the session before our answer arrives.
    let mut stdin = p.child.stdin.take().unwrap();
    let lines = Lines::follow(&mut p);
    // s_client takes a command only at the start of what one read of its
    // input returns: send each step once the previous one has been handled.
    for step in steps {
        stdin.write_all(step.send.as_bytes()).unwrap();
        lines.wait_for(step.s_client_prints, |l| l.contains(step.s_client_prints));
    }
    let server = server.join().unwrap_or_else(|e| panic!("our server: {}\n{}", message(&*e), lines.output()));
    // Our server closed: s_client ends, and has printed all it will.
    let out = lines.to_end();
    drop(stdin);
    let (read, st) = server;
    let want: Vec<&str> = steps.iter().filter_map(|s| s.server_reads).collect();
    assert_eq!(read, want, "what our server read; s_client said:\n{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "s_client verified us:\n{out}");
    assert!(st.handshake_complete);
    assert_eq!(st.version, Some(case.version));
    assert_eq!(st.server_name.as_deref(), Some("localhost"), "s_client's SNI");
    match case.client_certificate {
        Some(name) => {
            assert_eq!(st.peer_certificates.first(), Some(&pki.der(name)), "the client's certificate, leaf first")
        }
        None => assert!(st.peer_certificates.is_empty(), "no client certificate was asked for"),
    }
}

const PYTHON_CLIENT: &str = r#"
import socket, ssl, sys
ca, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["h2", "http/1.1"])
with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"hello from python\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        print(s.version())
        print(s.selected_alpn_protocol())
        print(data.decode().strip())
"#;

#[test]
fn python_ssl_against_our_server() {
    let pki = pki();
    let cfg = server_builder().alpn_protocols(["http/1.1"]).build().unwrap();
    let (addr, server) = serve_one(&cfg, |c| {
        c.handshake().expect("handshake with python");
        let line = read_line(&c).unwrap();
        (&c).write_all(b"hello from reseau\n").unwrap();
        let st = c.connection_state();
        c.close().unwrap();
        (line, st)
    });
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(PYTHON_CLIENT)
        .arg(pki.path("ca.pem"))
        .arg(addr.port().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (out, err, status) = Proc::spawn("python3", &mut cmd).finish();
    let (line, st) = server.join().unwrap();
    assert!(status.success(), "python3 failed:\n{out}\n{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["TLSv1.3", "http/1.1", "hello from reseau"], "{err}");
    assert_eq!(line, "hello from python\n");
    assert_eq!(st.version, Some(Version::Tls13));
    assert_eq!(st.alpn_protocol.as_deref(), Some("http/1.1"));
    assert_eq!(st.server_name.as_deref(), Some("localhost"));
}

#[test]
fn curl_fetches_a_page_from_our_server() {
    let pki = pki();
    const BODY: &str = "hello from reseau over https\n";
    let cfg = server_builder().alpn_protocols(["http/1.1"]).build().unwrap();
    let (addr, server) = serve_one(&cfg, |c| {
        c.handshake().expect("handshake with curl");
        // A tiny HTTP/1.1 responder: read the head, answer, close.
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.ends_with(b"\r\n\r\n") {
            let n = (&c).read(&mut buf).unwrap();
            assert!(n > 0, "curl closed before finishing its request: {:?}", String::from_utf8_lossy(&head));
            head.extend_from_slice(&buf[..n]);
        }
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
            BODY.len()
        );
        (&c).write_all(reply.as_bytes()).unwrap();
        let st = c.connection_state();
        c.close().unwrap();
        (String::from_utf8(head).unwrap(), st)
    });
    let port = addr.port();
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--max-time", &PATIENCE.as_secs().to_string()])
        .arg("--cacert")
        .arg(pki.path("ca.pem"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(["--write-out", "\n%{http_code} %{http_version} %{ssl_verify_result}"])
        .arg(format!("https://localhost:{port}/hello"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (out, err, status) = Proc::spawn("curl", &mut cmd).finish();
    let (head, st) = server.join().unwrap();
    assert!(status.success(), "curl failed ({status}):\n{out}\n{err}");
    assert_eq!(out, format!("{BODY}\n200 1.1 0"), "body, then status, HTTP version, verify result; {err}");
    assert!(head.starts_with("GET /hello HTTP/1.1\r\n"), "{head}");
    assert!(head.contains(&format!("Host: localhost:{port}\r\n")), "{head}");
    assert_eq!(st.alpn_protocol.as_deref(), Some("http/1.1"));
    assert_eq!(st.server_name.as_deref(), Some("localhost"));
    assert_eq!(st.version, Some(Version::Tls13));
}

/// The Go `crypto/tls` peers of the interop matrix (stress/go: `echoserver`
/// and `echoclient`) and of the fleet test (`fleetclient`), built once per test process with `go build`: the
/// standard library only, nothing downloaded, the build cache kept in
/// cargo's scratch directory.
fn go_peers() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = scratch_dir("reseau-go-peers");
        let mut cmd = Command::new("go");
        cmd.args(["build", "-o"])
            .arg(&out)
            .args(["./echoserver", "./echoclient", "./fleetclient"])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../stress/go"))
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local")
            .env("GOCACHE", Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (out_text, err, status) = Proc::spawn("go", &mut cmd).finish();
        assert!(status.success(), "go build of the Go peers failed ({status}):\n{out_text}\n{err}");
        out
    })
}

/// The `KEY value` line a Go peer reported.
fn report<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
}

#[test]
fn client_against_go_server() {
    const SIZE: usize = 64 * 1024;
    let pki = pki();
    for (version, want) in [("1.3", Version::Tls13), ("1.2", Version::Tls12)] {
        let mut cmd = Command::new(go_peers().join("echoserver"));
        cmd.arg("-cert")
            .arg(pki.path("server.pem"))
            .arg("-key")
            .arg(pki.path("server.key"))
            .args(["-version", version, "-timeout", &format!("{}s", PATIENCE.as_secs())])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut server = Proc::spawn("go echoserver", &mut cmd);
        let lines = Lines::follow(&mut server);
        let listen = lines.wait_for("the Go server's LISTEN line", |l| l.starts_with("LISTEN "));
        let addr = listen["LISTEN ".len()..].trim().parse().unwrap();

        let c = dial(addr, &client_builder().build().unwrap()).unwrap_or_else(|e| panic!("{e}\n{}", lines.output()));
        let mut sent = vec![0u8; SIZE];
        stream_bytes(7, 0, &mut sent);
        // Write on one thread while reading the echo on this one, so
        // neither side waits on a full buffer.
        let back = thread::scope(|s| {
            s.spawn(|| (&c).write_all(&sent).unwrap());
            let mut back = vec![0u8; SIZE];
            (&c).read_exact(&mut back).unwrap();
            back
        });
        assert!(back == sent, "Go {version}: the echo differs from what was sent");
        assert_eq!(c.connection_state().version, Some(want));
        c.close().unwrap();

        let out = lines.to_end();
        let status = server.child.wait().unwrap();
        assert!(status.success() && out.lines().any(|l| l == "OK"), "Go server ({status}):\n{out}");
        assert_eq!(report(&out, "VERSION"), Some(want.to_string().as_str()), "{out}");
        assert_eq!(report(&out, "BYTES"), Some(SIZE.to_string().as_str()), "{out}");
        assert_eq!(report(&out, "PEERCERTS"), Some("0"), "{out}");
    }
}

#[test]
fn go_client_against_our_server() {
    const SIZE: usize = 64 * 1024;
    let pki = pki();
    for (version, want) in [("1.3", Version::Tls13), ("1.2", Version::Tls12)] {
        let (addr, server) = serve_one(&server_builder().build().unwrap(), |c| {
            c.handshake().expect("handshake with the Go client");
            // Echo until the client's close_notify.
            let mut buf = [0u8; 16 * 1024];
            let mut echoed = 0;
            loop {
                match (&c).read(&mut buf).unwrap() {
                    0 => break,
                    n => (&c).write_all(&buf[..n]).unwrap(),
                }
                echoed += 1;
            }
            let st = c.connection_state();
            c.close().unwrap();
            (echoed, st)
        });
        let mut cmd = Command::new(go_peers().join("echoclient"));
        cmd.args(["-addr", &addr.to_string(), "-servername", "localhost", "-version", version])
            .args(["-size", &SIZE.to_string(), "-timeout", &format!("{}s", PATIENCE.as_secs())])
            .arg("-ca")
            .arg(pki.path("ca.pem"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (out, err, status) = Proc::spawn("go echoclient", &mut cmd).finish();
        let (echoed, st) = server.join().unwrap();
        assert!(status.success() && out.lines().any(|l| l == "OK"), "Go {version} client ({status}):\n{out}\n{err}");
        assert_eq!(report(&out, "VERSION"), Some(want.to_string().as_str()), "{out}");
        assert_eq!(report(&out, "BYTES"), Some(SIZE.to_string().as_str()), "every byte came back: {out}");
        assert!(echoed > 0);
        assert_eq!(st.version, Some(want));
        assert_eq!(st.server_name.as_deref(), Some("localhost"), "Go's SNI");
    }
}

/// Whether a fleet member's handshake resumed and what it exported (hex),
/// or why its handshake failed.
type FleetResult = Result<(bool, String), String>;

/// A reseau server for one connection of Go's fleetclient: it sends "hi",
/// exports keying material (label `EXPORTER-reseau-fleet`, context
/// `fleet`), and reads to the client's close_notify. Returns whether the
/// handshake resumed, and the material in hex.
fn fleet_member(cfg: &tls::Config) -> (std::net::SocketAddr, thread::JoinHandle<FleetResult>) {
    serve_one(cfg, |mut c| {
        c.handshake().map_err(|e| e.to_string())?;
        c.write_all(b"hi").unwrap();
        let ekm = c.export_keying_material("EXPORTER-reseau-fleet", Some(b"fleet"), 32).unwrap();
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
        Ok((c.connection_state().session_resumed, ekm.iter().map(|b| format!("{b:02x}")).collect()))
    })
}

/// Go's fleetclient against `addrs` with ALPN `alpn`: its output.
fn go_fleet_client(addrs: &[std::net::SocketAddr], version: &str, alpn: &str) -> String {
    let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    let mut cmd = Command::new(go_peers().join("fleetclient"));
    cmd.arg("-addrs")
        .arg(list.join(","))
        .arg("-ca")
        .arg(pki().path("ca.pem"))
        .args(["-version", version, "-alpn", alpn, "-timeout", &format!("{}s", PATIENCE.as_secs())])
        .args(["-export-label", "EXPORTER-reseau-fleet", "-export-context", "fleet", "-export-len", "32"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (out, err, status) = Proc::spawn("go fleetclient", &mut cmd).finish();
    assert!(status.success() && out.lines().any(|l| l == "OK"), "Go fleetclient ({status}):\n{out}\n{err}");
    out
}

/// Go's client, with its LRU session cache keyed by server name, resumes
/// at a second reseau server sharing the first one's session ticket keys,
/// and not at a third with other keys; its `ExportKeyingMaterial` (with a
/// context) gives what `Conn::export_keying_material` gives; and an ALPN
/// offer sharing nothing with the server's fails with
/// no_application_protocol, while `http/1.1` to an `h2` server goes on.
#[test]
fn go_client_against_a_reseau_fleet() {
    for (version, want) in [("1.3", "TLSv1.3"), ("1.2", "TLSv1.2")] {
        let member =
            |k: u8| server_builder().session_ticket_keys(vec![[k; 32]]).alpn_protocols(["h2"]).build().unwrap();
        let (a, sa) = fleet_member(&member(1));
        let (b, sb) = fleet_member(&member(1));
        let (c, sc) = fleet_member(&member(2));
        let out = go_fleet_client(&[a, b, c], version, "h2");
        let ours: Vec<(bool, String)> = [sa, sb, sc].into_iter().map(|h| h.join().unwrap().unwrap()).collect();
        for (i, (resumed, ekm)) in ours.iter().enumerate() {
            let line = format!("CONN {i} RESUMED {resumed} VERSION {want} ALPN h2");
            assert!(out.lines().any(|l| l == line), "Go {version}: no {line:?} in\n{out}");
            let export = format!("CONN {i} EXPORT {ekm}");
            assert!(
                out.lines().any(|l| l == export),
                "Go {version}: Go's exporter differs from ours ({export:?}):\n{out}"
            );
        }
        let resumed: Vec<bool> = ours.iter().map(|(r, _)| *r).collect();
        assert_eq!(resumed, [false, true, false], "Go {version}: resumed across the shared keys only");
    }
    // ALPN: no overlap fails; http/1.1 to h2 goes on without ALPN.
    let h2 = server_builder().alpn_protocols(["h2"]).build().unwrap();
    let (a, sa) = fleet_member(&h2);
    let out = go_fleet_client(&[a], "1.3", "spdy/3");
    assert!(out.contains("CONN 0 ERROR") && out.contains("no application protocol"), "{out}");
    let e = sa.join().unwrap().unwrap_err();
    assert!(e.contains("no application protocol"), "{e}");
    let (a, sa) = fleet_member(&h2);
    let out = go_fleet_client(&[a], "1.3", "http/1.1");
    assert!(out.contains("CONN 0 RESUMED false VERSION TLSv1.3 ALPN -"), "{out}");
    sa.join().unwrap().unwrap();
}
