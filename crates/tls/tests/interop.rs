//! Interoperability with other TLS stacks, started by the tests themselves:
//! our client against `openssl s_server`, and `openssl s_client`, Python's
//! `ssl` module and `curl` against our server. The tools must be installed
//! (CI installs them); a missing one fails the test with a clear message.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use support::{Lines, PATIENCE, Proc, SServer, client_builder, dial, pki, read_line, serve_one, server_builder};
use tls::Version;

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

#[test]
fn client_against_s_server_tls12_with_alpn() {
    let s = SServer::start(&["-tls1_2", "-alpn", "h2"]);
    let cfg = client_builder().alpn_protocols(["http/1.1", "h2"]).build().unwrap();
    let c = dial(s.addr, &cfg).unwrap_or_else(|e| panic!("dial s_server: {e}\n{}", s.output()));
    let st = c.connection_state();
    assert!(st.handshake_complete);
    assert_eq!(st.version, Some(Version::Tls12));
    assert_eq!(st.alpn_protocol.as_deref(), Some("h2"));
    let cipher = st.cipher_suite.clone().expect("a cipher suite");
    assert!(cipher.starts_with("ECDHE-ECDSA-"), "TLS 1.2 suite with the EC server key: {cipher}");
    assert_eq!(st.server_name.as_deref(), Some("localhost"));
    assert_eq!(st.peer_certificates.first(), Some(&pki().der("server")), "leaf first");
    assert!(!st.session_resumed);
    exchange_with_rev(&c);
}

#[test]
fn client_against_s_server_tls13_with_alpn() {
    let s = SServer::start(&["-tls1_3", "-alpn", "h2"]);
    let cfg = client_builder().alpn_protocols(["http/1.1", "h2"]).build().unwrap();
    let c = dial(s.addr, &cfg).unwrap_or_else(|e| panic!("dial s_server: {e}\n{}", s.output()));
    let st = c.connection_state();
    assert!(st.handshake_complete);
    assert_eq!(st.version, Some(Version::Tls13));
    assert_eq!(st.alpn_protocol.as_deref(), Some("h2"));
    let cipher = st.cipher_suite.clone().expect("a cipher suite");
    assert!(cipher.starts_with("TLS_"), "a TLS 1.3 suite: {cipher}");
    assert_eq!(st.peer_certificates.first(), Some(&pki().der("server")));
    exchange_with_rev(&c);
}

#[test]
fn client_against_s_server_without_alpn() {
    // The server knows no ALPN: the client's offer is ignored, no protocol.
    let s = SServer::start(&["-tls1_3"]);
    let cfg = client_builder().alpn_protocols(["h2"]).build().unwrap();
    let c = dial(s.addr, &cfg).unwrap_or_else(|e| panic!("dial s_server: {e}\n{}", s.output()));
    let st = c.connection_state();
    assert_eq!(st.version, Some(Version::Tls13));
    assert_eq!(st.alpn_protocol, None);
    exchange_with_rev(&c);
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

#[test]
fn s_client_against_our_server() {
    let pki = pki();
    let (addr, server) = serve_one(&server_builder().build().unwrap(), |c| {
        c.handshake().expect("handshake with s_client");
        let line = read_line(&c).unwrap();
        (&c).write_all(b"hello from reseau\n").unwrap();
        let st = c.connection_state();
        c.close().unwrap();
        (line, st)
    });
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string(), "-servername", "localhost"])
        .args(["-verify_return_error", "-verify_hostname", "localhost"])
        .arg("-CAfile")
        .arg(pki.path("ca.pem"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn("openssl s_client", &mut cmd);
    // Keep stdin open until s_client is done: its end of input would end
    // the session before our answer arrives.
    let mut stdin = p.child.stdin.take().unwrap();
    stdin.write_all(b"hello from s_client\n").unwrap();
    let (out, err, _) = p.finish();
    drop(stdin);
    let (line, st) = server.join().unwrap();
    assert_eq!(line, "hello from s_client\n");
    assert!(out.contains("hello from reseau"), "s_client got our answer:\n{out}\n{err}");
    assert!(out.contains("Verify return code: 0 (ok)"), "s_client verified us:\n{out}\n{err}");
    assert!(st.handshake_complete);
    assert_eq!(st.version, Some(Version::Tls13));
    assert_eq!(st.server_name.as_deref(), Some("localhost"), "s_client's SNI");
    assert!(st.peer_certificates.is_empty(), "no client certificate was asked for");
}

#[test]
fn s_client_with_client_certificate_against_our_server() {
    let pki = pki();
    let cfg = server_builder()
        .client_auth(tls::ClientAuth::RequireAndVerifyClientCert)
        .client_ca_file(pki.path("ca.pem"))
        .max_version(Version::Tls12)
        .build()
        .unwrap();
    let (addr, server) = serve_one(&cfg, |c| {
        c.handshake().expect("handshake with s_client");
        let line = read_line(&c).unwrap();
        (&c).write_all(b"hello, client\n").unwrap();
        let st = c.connection_state();
        c.close().unwrap();
        (line, st)
    });
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string(), "-servername", "localhost", "-verify_return_error"])
        .arg("-CAfile")
        .arg(pki.path("ca.pem"))
        .arg("-cert")
        .arg(pki.path("client.pem"))
        .arg("-key")
        .arg(pki.path("client.key"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn("openssl s_client", &mut cmd);
    let mut stdin = p.child.stdin.take().unwrap();
    stdin.write_all(b"hello from a client with a certificate\n").unwrap();
    let (out, err, _) = p.finish();
    drop(stdin);
    let (line, st) = server.join().unwrap();
    assert_eq!(line, "hello from a client with a certificate\n");
    assert!(out.contains("hello, client"), "s_client got our answer:\n{out}\n{err}");
    assert_eq!(st.version, Some(Version::Tls12));
    assert_eq!(st.peer_certificates.first(), Some(&pki.der("client")), "the client's certificate, leaf first");
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

#[test]
fn s_client_key_update_against_our_server() {
    // s_client's "K" command sends a KeyUpdate that asks for one back: our
    // server must answer it from inside a read and keep both directions going.
    let pki = pki();
    let (addr, server) = serve_one(&server_builder().build().unwrap(), |c| {
        c.handshake().expect("handshake with s_client");
        let first = read_line(&c).unwrap();
        (&c).write_all(b"first answer\n").unwrap();
        let second = read_line(&c).unwrap(); // after the KeyUpdate
        (&c).write_all(b"second answer\n").unwrap();
        c.close().unwrap();
        (first, second)
    });
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string(), "-servername", "localhost", "-verify_return_error"])
        .arg("-CAfile")
        .arg(pki.path("ca.pem"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn("openssl s_client", &mut cmd);
    let mut stdin = p.child.stdin.take().unwrap();
    let lines = Lines::follow(&mut p);
    // s_client takes a command only at the start of what one read of its
    // input returns: send each part once the previous one has been handled.
    stdin.write_all(b"one\n").unwrap();
    lines.wait_for("the first answer", |l| l.contains("first answer"));
    stdin.write_all(b"K\n").unwrap();
    lines.wait_for("s_client's KEYUPDATE", |l| l.contains("KEYUPDATE"));
    stdin.write_all(b"two\n").unwrap();
    lines.wait_for("the second answer", |l| l.contains("second answer"));
    let (first, second) = server.join().unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("one\n", "two\n"), "{}", lines.output());
    drop(stdin);
}
