//! Security by default: a `Config` built with no settings at all verifies
//! the server's certificate (a self-signed server, or one from a CA only
//! the test trusts, is refused) and its name; a default server and client
//! negotiate TLS 1.3, and never less than TLS 1.2; peers that offer only
//! SSLv3, TLS 1.0 or TLS 1.1 are refused (the openssl command line on the
//! other end, with its own security level lowered so that the old-version
//! peer really tries, and hand-made ClientHellos); and a client's attempt
//! to renegotiate fails without a second handshake, while the server goes
//! on serving others. TLS 1.3 suites come in Go's order, and a server
//! sends one TLS 1.3 session ticket per handshake, as Go's does.

// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

use support::{Lines, PATIENCE, Proc, SServer, client_builder, client_config, dial, pki, read_line, serve_one};
use support::{server_builder, server_builder_with, server_config, soon};
use tls::Version;

/// Our server for one connection, reporting its handshake result.
fn one_handshake(cfg: &tls::Config) -> (SocketAddr, std::thread::JoinHandle<Result<Option<Version>, tls::Error>>) {
    serve_one(cfg, |c| {
        c.handshake()?;
        let mut b = [0u8; 4];
        (&c).read_exact(&mut b).map_err(tls::Error::Io)?;
        (&c).write_all(&b).map_err(tls::Error::Io)?;
        Ok(c.connection_state().version)
    })
}

#[track_caller]
fn assert_refused(r: Result<tls::Conn, tls::Error>, why: &[&str], what: &str) {
    match r {
        Err(tls::Error::Tls(e)) => {
            assert!(why.iter().any(|w| e.message.contains(w)), "{what}: expected one of {why:?}, got {e}");
        }
        Err(e) => panic!("{what}: expected Error::Tls, got {e:?}"),
        Ok(c) => panic!("{what}: connected ({:?})", c.connection_state()),
    }
}

/// `Config::builder().build()` with nothing set: it verifies against the
/// system roots, so a self-signed server, and one whose CA only the tests
/// trust, are refused; the same server is accepted once its CA is trusted.
#[test]
fn a_default_config_verifies_the_server() {
    let default = tls::Config::builder().build().unwrap();
    for (cert, why) in [
        ("selfsigned", &["self-signed certificate", "self signed certificate"][..]),
        ("server", &["unable to get local issuer certificate"][..]),
    ] {
        let (addr, server) = one_handshake(&server_builder_with(cert).build().unwrap());
        let r = tls::connect(&format!("localhost:{}", addr.port()), &default);
        assert_refused(r, why, &format!("a default client against the {cert} certificate"));
        assert!(server.join().unwrap().is_err(), "the server's handshake fails too");
    }
    // Control: trusting the CA is all it takes.
    let trusting = tls::Config::builder().ca_file(pki().path("ca.pem")).build().unwrap();
    let (addr, server) = one_handshake(&server_config());
    let mut c = tls::connect(&format!("localhost:{}", addr.port()), &trusting).unwrap();
    c.write_all(b"ping").unwrap();
    c.read_exact(&mut [0u8; 4]).unwrap();
    server.join().unwrap().unwrap();
}

/// Host names are checked by default, for names and for IP addresses.
#[test]
fn a_default_config_checks_the_name() {
    let trusting = tls::Config::builder().ca_file(pki().path("ca.pem")).build().unwrap();
    // The certificate is for localhost / 127.0.0.1 / ::1, not other.test.
    let (addr, server) = one_handshake(&server_config());
    let tcp = tcp::connect_addr(addr).unwrap();
    let wrong = tls::Config::builder().ca_file(pki().path("ca.pem")).server_name("other.test").build().unwrap();
    let c = tls::client(tcp, &wrong).unwrap();
    c.set_deadline(Some(soon())).unwrap();
    assert_refused(c.handshake().map(|()| c), &["hostname mismatch"], "a name the certificate lacks");
    assert!(server.join().unwrap().is_err());
    // A certificate for other.test only, dialed by IP address and by name.
    let other = server_builder_with("other").build().unwrap();
    let (addr, server) = one_handshake(&other);
    assert_refused(tls::connect_addr(addr, &trusting), &["IP address mismatch"], "an IP the certificate lacks");
    assert!(server.join().unwrap().is_err());
    let (addr, server) = one_handshake(&other);
    assert_refused(
        tls::connect(&format!("localhost:{}", addr.port()), &trusting),
        &["hostname mismatch"],
        "localhost against an other.test certificate",
    );
    assert!(server.join().unwrap().is_err());
}

/// Default against default: TLS 1.3. A client capped at TLS 1.2 gets TLS
/// 1.2 from a default server; so does `openssl s_client -tls1_2`.
#[test]
fn defaults_negotiate_tls13_and_never_below_tls12() {
    let (addr, server) = one_handshake(&server_builder().build().unwrap());
    let mut c = dial(addr, &client_config()).unwrap();
    c.write_all(b"ping").unwrap();
    c.read_exact(&mut [0u8; 4]).unwrap();
    assert_eq!(c.connection_state().version, Some(Version::Tls13));
    assert_eq!(server.join().unwrap().unwrap(), Some(Version::Tls13));

    let (addr, server) = one_handshake(&server_builder().build().unwrap());
    let mut c = dial(addr, &client_builder().max_version(Version::Tls12).build().unwrap()).unwrap();
    c.write_all(b"ping").unwrap();
    c.read_exact(&mut [0u8; 4]).unwrap();
    assert_eq!(server.join().unwrap().unwrap(), Some(Version::Tls12));

    let (out, server) = s_client_against_our_server(&["-tls1_2"], b"ping");
    assert_eq!(server.unwrap(), Some(Version::Tls12), "s_client -tls1_2:\n{out}");
    assert!(out.contains("Protocol  : TLSv1.2"), "s_client -tls1_2:\n{out}");
}

/// Run `openssl s_client -msg` with `args` against our (default) server,
/// send `input`, and return everything it printed and our server's result.
fn s_client_against_our_server(args: &[&str], input: &[u8]) -> (String, Result<Option<Version>, tls::Error>) {
    s_client_against(&server_builder().build().unwrap(), args, input)
}

/// `s_client_against_our_server` for a server built from `cfg`.
fn s_client_against(cfg: &tls::Config, args: &[&str], input: &[u8]) -> (String, Result<Option<Version>, tls::Error>) {
    let (addr, server) = one_handshake(cfg);
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string(), "-servername", "localhost", "-msg"])
        .arg("-CAfile")
        .arg(pki().path("ca.pem"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn("openssl s_client", &mut cmd);
    let mut stdin = p.child.stdin.take().unwrap();
    // It may have given up already; then this fails, harmlessly.
    let _ = stdin.write_all(input);
    let result = server.join().unwrap();
    drop(stdin);
    let (out, err, _) = p.finish();
    (format!("{out}\n{err}"), result)
}

/// Whether this CPU runs AES-GCM in hardware, by Go's test (AES and
/// carry-less multiplication instructions), as the kernel reports its
/// flags: an oracle apart from the library's own detection.
fn aes_in_hardware() -> bool {
    let info = std::fs::read_to_string("/proc/cpuinfo").expect("/proc/cpuinfo");
    let flags = info.lines().find(|l| l.starts_with("flags") || l.starts_with("Features")).unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    has("aes") && (has("pclmulqdq") || has("pmull"))
}

/// TLS 1.3 suites in Go's order: a default client and server agree on
/// AES-128-GCM where the CPU has AES instructions (ChaCha20-Poly1305 where
/// it has not), not OpenSSL's AES-256-GCM. Our server keeps its own order
/// against a client that prefers AES-256-GCM, and gives ChaCha20-Poly1305
/// to a client that puts it first, as Go's server does for clients without
/// AES hardware.
#[test]
fn tls13_suites_follow_gos_order() {
    let (addr, server) = one_handshake(&server_config());
    let mut c = dial(addr, &client_config()).unwrap();
    c.write_all(b"ping").unwrap();
    c.read_exact(&mut [0u8; 4]).unwrap();
    let want = if aes_in_hardware() { "TLS_AES_128_GCM_SHA256" } else { "TLS_CHACHA20_POLY1305_SHA256" };
    assert_eq!(c.connection_state().cipher_suite.as_deref(), Some(want), "default against default");
    server.join().unwrap().unwrap();

    for (offer, want) in [
        ("TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"),
        ("TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"),
    ] {
        let (out, server) = s_client_against_our_server(&["-tls1_3", "-ciphersuites", offer], b"ping");
        assert!(server.is_ok(), "s_client offering {offer}: our server failed: {server:?}\n{out}");
        assert!(out.contains(&format!("Cipher is {want}")), "s_client offering {offer} should get {want}:\n{out}");
    }
}

/// A server sends one TLS 1.3 session ticket per handshake, as Go's does
/// (OpenSSL's own default is two), and none with `session_tickets(false)`;
/// TLS 1.2 keeps its single ticket. Counted on the wire by `s_client -msg`,
/// which with `-ign_eof` reads until our server closes, so every ticket
/// sent has been printed.
#[test]
fn our_server_sends_one_session_ticket_per_handshake() {
    let tickets =
        |out: &str| out.lines().filter(|l| l.starts_with("<<< ") && l.trim_end().ends_with("NewSessionTicket")).count();
    let on = server_builder().build().unwrap();
    let off = server_builder().session_tickets(false).build().unwrap();
    for (cfg, args, want, what) in [
        (&on, &["-tls1_3"][..], 1, "TLS 1.3, tickets on"),
        (&off, &["-tls1_3"][..], 0, "TLS 1.3, tickets off"),
        (&on, &["-tls1_2"][..], 1, "TLS 1.2, tickets on"),
    ] {
        let args: Vec<&str> = args.iter().copied().chain(["-ign_eof"]).collect();
        let (out, server) = s_client_against(cfg, &args, b"ping");
        assert!(server.is_ok(), "{what}: our server failed: {server:?}\n{out}");
        assert!(out.contains("ServerHello"), "{what}: no handshake seen, so the count proves nothing:\n{out}");
        assert_eq!(tickets(&out), want, "{what}: NewSessionTicket messages:\n{out}");
    }
}

/// `openssl s_client -tls1` and `-tls1_1`, with the cipher security level
/// lowered so that it really offers the old version: it sends its
/// ClientHello, and our server answers with a fatal protocol_version alert.
#[test]
fn our_server_refuses_tls10_and_tls11_clients() {
    for (flag, name) in [("-tls1", "TLS 1.0"), ("-tls1_1", "TLS 1.1")] {
        let (out, server) = s_client_against_our_server(&[flag, "-cipher", "DEFAULT@SECLEVEL=0"], b"ping");
        let hello = out.lines().any(|l| l.starts_with(&format!(">>> {name}, Handshake")) && l.ends_with("ClientHello"));
        assert!(hello, "s_client {flag} did not offer {name}, so the test proves nothing:\n{out}");
        assert!(out.contains("fatal protocol_version"), "s_client {flag}: no protocol_version alert from us:\n{out}");
        match server {
            Err(tls::Error::Tls(e)) => assert!(e.message.contains("unsupported protocol"), "{flag}: {e}"),
            other => panic!("s_client {flag}: our server should refuse with Error::Tls, got {other:?}"),
        }
    }
}

/// A ClientHello offering at most `version` (legacy_version field, no
/// supported_versions extension), in a record of `record_version`, with
/// suites that existed before TLS 1.2.
fn old_client_hello(version: [u8; 2], record_version: [u8; 2]) -> Vec<u8> {
    let mut body = vec![version[0], version[1]];
    body.extend((0..32u8).map(|i| i.wrapping_mul(73).wrapping_add(11))); // random
    body.push(0); // no session id
    let suites: [u16; 6] = [0xC009, 0xC013, 0x002F, 0x0035, 0x000A, 0x00FF];
    body.extend(((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend(s.to_be_bytes());
    }
    body.extend([1, 0]); // null compression only
    let mut hs = vec![0x01, 0, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend(body);
    let mut record = vec![0x16, record_version[0], record_version[1], (hs.len() >> 8) as u8, hs.len() as u8];
    record.extend(hs);
    record
}

/// Send `hello` raw to our server; returns what came back before it
/// closed, and the server's handshake result.
fn raw_hello(hello: &[u8]) -> (Vec<u8>, Result<Option<Version>, tls::Error>) {
    let (addr, server) = one_handshake(&server_builder().build().unwrap());
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.set_read_timeout(Some(PATIENCE)).unwrap();
    raw.write_all(hello).unwrap();
    let mut reply = Vec::new();
    let _ = raw.read_to_end(&mut reply); // until the server closes (or resets)
    (reply, server.join().unwrap())
}

/// Hand-made ClientHellos offering SSLv3, TLS 1.0 and TLS 1.1: our server
/// answers each with a fatal alert and nothing else (no ServerHello),
/// because of the version; an SSLv2-format hello is refused too.
#[test]
fn our_server_refuses_ssl3_tls10_and_tls11_hellos() {
    // SSL 3.0 has no protocol_version alert: OpenSSL sends it
    // handshake_failure (40), and says "version too low".
    for (name, version, record, alert, why) in [
        ("SSLv3", [3, 0], [3, 0], 40, "version too low"),
        ("TLS 1.0", [3, 1], [3, 1], 70, "unsupported protocol"),
        ("TLS 1.1", [3, 2], [3, 1], 70, "unsupported protocol"),
    ] {
        let (reply, server) = raw_hello(&old_client_hello(version, record));
        assert!(reply.len() >= 7, "{name}: no alert, only {reply:02x?}");
        assert_eq!(reply[0], 0x15, "{name}: an alert record first, not {reply:02x?}");
        assert_eq!(&reply[5..7], &[2, alert], "{name}: a fatal alert {alert}, not {reply:02x?}");
        assert_eq!(reply.len(), 7, "{name}: more than the alert came back: {reply:02x?}");
        match server {
            Err(tls::Error::Tls(e)) => assert!(e.message.contains(why), "{name}: {e}"),
            other => panic!("{name}: our server should refuse with Error::Tls, got {other:?}"),
        }
    }
    // SSLv2's own format: a two-byte length with the top bit set.
    let mut v2 = vec![0x01, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, 0x10];
    v2.extend([0x01, 0x00, 0x80, 0x07, 0x00, 0xC0]);
    v2.extend([0x42; 16]);
    let mut hello = vec![0x80 | (v2.len() >> 8) as u8, v2.len() as u8];
    hello.extend(v2);
    let (reply, server) = raw_hello(&hello);
    assert!(reply.first() != Some(&0x16), "SSLv2: a handshake record in the reply {reply:02x?}");
    assert!(matches!(server, Err(tls::Error::Tls(_))), "SSLv2: {server:?}");
}

/// Our client against `openssl s_server -tls1` and `-tls1_1` (security
/// level lowered so that it really serves them): refused. Against
/// `-tls1_2`: TLS 1.2.
#[test]
fn our_client_refuses_tls10_and_tls11_servers() {
    for flag in ["-tls1", "-tls1_1"] {
        let s = SServer::start(&[flag, "-cipher", "DEFAULT@SECLEVEL=0"]);
        let r = dial(s.addr, &client_config());
        assert_refused(r, &["unsupported protocol", "protocol version"], &format!("s_server {flag}"));
    }
    let s = SServer::start(&["-tls1_2"]);
    let c = dial(s.addr, &client_config()).unwrap();
    assert_eq!(c.connection_state().version, Some(Version::Tls12), "{}", s.output());
}

/// `openssl s_client -tls1_2` asks to renegotiate (its `R` command) in the
/// middle of a session with our server: the renegotiation does not happen
/// (the key log shows one handshake), the connection is not served
/// further, and the server goes on to serve another client.
#[test]
fn client_renegotiation_is_refused_and_the_server_serves_on() {
    let keylog = pki().scratch("renegotiation.keylog");
    let cfg = server_builder().keylog_file(&keylog).build().unwrap();
    let l = support::listener(&cfg);
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let c = l.accept().unwrap();
        c.set_deadline(Some(soon())).unwrap();
        c.handshake().unwrap();
        let first = read_line(&c).unwrap();
        (&c).write_all(b"first answer\n").unwrap();
        let second = read_line(&c);
        drop(c);
        // Another client, served as usual.
        let mut next = l.accept().unwrap();
        next.set_deadline(Some(soon())).unwrap();
        let mut b = [0u8; 4];
        next.read_exact(&mut b).unwrap();
        next.write_all(&b).unwrap();
        (first, second)
    });
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string(), "-servername", "localhost", "-tls1_2"])
        .arg("-CAfile")
        .arg(pki().path("ca.pem"))
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
    stdin.write_all(b"R\n").unwrap();
    lines.wait_for("s_client's RENEGOTIATING", |l| l.contains("RENEGOTIATING"));
    let _ = stdin.write_all(b"two\n");

    let mut c = dial(addr, &client_config()).unwrap();
    c.write_all(b"next").unwrap();
    let mut b = [0u8; 4];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"next", "the server serves the next client");
    let (first, second) = server.join().unwrap();
    drop(stdin);
    assert_eq!(first, "one\n");
    assert!(second.is_err(), "the session went on after a renegotiation request: {second:?}\n{}", lines.output());
    // A TLS 1.2 handshake logs one CLIENT_RANDOM line, a renegotiation
    // would log another (the next client's TLS 1.3 logs other labels).
    let log = std::fs::read_to_string(&keylog).unwrap();
    let handshakes = log.lines().filter(|l| l.starts_with("CLIENT_RANDOM ")).count();
    assert_eq!(handshakes, 1, "one TLS 1.2 handshake with s_client, not a second:\n{log}");
}

/// TLS 1.2 offers Go's suites: ECDHE with AEAD, and ECDHE CBC-SHA for old
/// peers, but not the CBC-SHA256/384 suites that testssl.sh flags for
/// LUCKY13 (OpenSSL's default list has them).
#[test]
fn tls12_defaults_leave_out_cbc_sha256_and_sha384_suites() {
    for (cipher, accepted) in [
        ("ECDHE-ECDSA-AES128-SHA256", false),
        ("ECDHE-ECDSA-AES256-SHA384", false),
        ("ECDHE-ECDSA-AES128-GCM-SHA256", true),
        ("ECDHE-ECDSA-CHACHA20-POLY1305", true),
        ("ECDHE-ECDSA-AES128-SHA", true),
    ] {
        let (out, server) = s_client_against_our_server(&["-tls1_2", "-cipher", cipher], b"ping");
        assert_eq!(server.is_ok(), accepted, "{cipher}: server said {server:?}; s_client:\n{out}");
        if accepted {
            assert_eq!(server.unwrap(), Some(Version::Tls12), "{cipher}");
        }
    }
}
