//! Hostile input to a TLS server: random bytes, truncated records, record
//! headers announcing more than a record may hold, a ClientHello cut in
//! half, a hundred clients that connect and never say hello, and client
//! certificates that are expired, issued for another purpose or by an
//! untrusted CA. Each bad connection fails on its own, promptly (well
//! before the handshake timeout unless it is the handshake timeout that
//! must end it), the plaintext never sees a byte of it, and real clients
//! are served all along.
// What only the Linux-only tests (they watch threads park in `/proc`) use.
#![cfg_attr(not(target_os = "linux"), allow(unused_imports, dead_code))]
// Results carry tls::Error, whose public fields make it large.
#![allow(clippy::result_large_err)]

mod support;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use support::{
    PATIENCE, capture_client_hello, client_builder, client_config, dial, pki, raise_fd_limit, server_builder, soon,
    still_serves,
};
// Threads are seen parked in `/proc`.
#[cfg(target_os = "linux")]
use support::{spawn_tracked, until_parked};
use tls::{ClientAuth, Version};

/// How long a bad connection may take to fail when nothing but its own
/// badness should stop it: far below [`SLOW_HANDSHAKE`].
const PROMPT: Duration = Duration::from_secs(5);
/// The handshake timeout of the servers here, so that a failure that comes
/// from the timeout cannot pass for a prompt one.
const SLOW_HANDSHAKE: Duration = Duration::from_secs(30);

fn server_cfg() -> tls::Config {
    server_builder().handshake_timeout(SLOW_HANDSHAKE).build().unwrap()
}

/// A listener with a long handshake timeout.
fn hostile_listener() -> tls::Listener {
    support::listener(&server_cfg())
}

/// Accept one connection and run its handshake; returns the result and
/// how long it took.
fn accept_and_handshake(l: &tls::Listener) -> (tls::Conn, Result<(), tls::Error>, Duration) {
    let s = l.accept().unwrap();
    let start = Instant::now();
    let r = s.handshake();
    (s, r, start.elapsed())
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Forty blobs of random bytes (some dressed as a handshake record, some as
/// a TLS 1.2 ClientHello with a random body), each followed by the end of
/// the client's stream: every handshake fails, promptly, with `Error::Tls`
/// or `Error::Eof`, and the listener serves on.
#[test]
fn random_bytes_fail_the_handshake_promptly() {
    let l = hostile_listener();
    let addr = l.local_addr().unwrap();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..40 {
        let len = 1 + (xorshift(&mut rng) % 4096) as usize;
        let mut blob: Vec<u8> = (0..len).map(|_| xorshift(&mut rng) as u8).collect();
        match i % 4 {
            1 if len > 5 => blob[..3].copy_from_slice(&[0x16, 0x03, 0x01]),
            2 if len > 9 => {
                let body = (len - 5) as u16;
                blob[..6].copy_from_slice(&[0x16, 0x03, 0x03, (body >> 8) as u8, body as u8, 0x01]);
            }
            _ => {}
        }
        let mut raw = TcpStream::connect(addr).unwrap();
        raw.write_all(&blob).unwrap();
        raw.shutdown(Shutdown::Write).unwrap();
        let (_s, r, took) = accept_and_handshake(&l);
        match r {
            Err(tls::Error::Tls(_) | tls::Error::Eof) => {}
            other => panic!("blob {i} ({len} bytes, {:02x?}...): {other:?}", &blob[..len.min(8)]),
        }
        assert!(took < PROMPT, "blob {i}: the handshake took {took:?} to fail");
    }
    still_serves(&l);
}

/// Our server and a client of ours with a finished handshake, for
/// feeding raw bytes to the server's record layer.
fn established(l: &tls::Listener, max: Version) -> (tls::Conn, tls::Conn) {
    let addr = l.local_addr().unwrap();
    let cfg = client_builder().max_version(max).build().unwrap();
    let client = thread::spawn(move || dial(addr, &cfg).unwrap());
    let s = l.accept().unwrap();
    s.set_deadline(Some(soon())).unwrap();
    s.handshake().unwrap();
    (client.join().unwrap(), s)
}

/// The server's read of whatever the client sent raw: an error, promptly.
#[track_caller]
fn assert_read_fails_promptly(s: &tls::Conn, what: &str) -> io::Error {
    let start = Instant::now();
    let r = (&*s).read(&mut [0u8; 1024]);
    let took = start.elapsed();
    let e = match r {
        Ok(n) => panic!("{what}: the server read {n} bytes of plaintext"),
        Err(e) => e,
    };
    assert!(took < PROMPT, "{what}: the read took {took:?} to fail ({e})");
    assert_ne!(e.kind(), io::ErrorKind::TimedOut, "{what}: {e:?}");
    e
}

/// Truncated records: a ClientHello record cut short before the client's
/// stream ends, and after the handshake an application-data record cut
/// short, and one complete but forged (its MAC cannot check out). None
/// yields a byte of plaintext; the truncated ones read as an unexpected
/// end, the forged one as bad data.
#[test]
fn truncated_and_forged_records() {
    let hello = capture_client_hello(&client_config());
    let l = hostile_listener();
    let addr = l.local_addr().unwrap();

    // The header promises the whole ClientHello; a third of it comes.
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.write_all(&hello[..hello.len() / 3]).unwrap();
    raw.shutdown(Shutdown::Write).unwrap();
    let (_s, r, took) = accept_and_handshake(&l);
    assert!(matches!(r, Err(tls::Error::Eof | tls::Error::Tls(_))), "a truncated ClientHello: {r:?}");
    assert!(took < PROMPT, "a truncated ClientHello took {took:?} to fail");

    for max in [Version::Tls12, Version::Tls13] {
        // A record header for 256 bytes, 50 of them, then the end.
        let (c, s) = established(&l, max);
        (c.net_conn()).write_all(&[0x17, 0x03, 0x03, 0x01, 0x00]).unwrap();
        (c.net_conn()).write_all(&[0xAB; 50]).unwrap();
        c.net_conn().close_write().unwrap();
        let e = assert_read_fails_promptly(&s, &format!("{max}: a truncated record"));
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{max}: a truncated record: {e:?}");

        // A whole record of garbage.
        let (c, s) = established(&l, max);
        let mut forged = vec![0x17, 0x03, 0x03, 0x00, 0x40];
        forged.extend((0..64u8).map(|i| i.wrapping_mul(37)));
        (c.net_conn()).write_all(&forged).unwrap();
        let e = assert_read_fails_promptly(&s, &format!("{max}: a forged record"));
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{max}: a forged record: {e:?}");
        assert!(!s.is_open(), "{max}: a connection that read a forged record is not usable");
        assert!((&s).read(&mut [0u8; 8]).is_err(), "{max}: the connection stays failed");
        drop(c);
    }
    still_serves(&l);
}

/// OpenSSL's words for a record longer than allowed.
fn refused_for_length(message: &str) -> bool {
    ["length too long", "record overflow", "record_overflow"].iter().any(|w| message.contains(w))
}

/// Record headers announcing more than any record may hold (2^14 + 2048
/// bytes of ciphertext at most, less under TLS 1.3), with the client then
/// sending nothing more and keeping the connection open: the server must
/// refuse on the header alone, not wait for the body.
#[test]
fn oversized_record_headers_are_refused_on_sight() {
    let l = hostile_listener();
    let addr = l.local_addr().unwrap();
    for len in [0xFFFFu16, (1 << 14) + 2048 + 1] {
        let mut raw = TcpStream::connect(addr).unwrap();
        raw.write_all(&[0x16, 0x03, 0x01, (len >> 8) as u8, len as u8, 0x01]).unwrap();
        let (_s, r, took) = accept_and_handshake(&l);
        match r {
            Err(tls::Error::Tls(t)) => {
                assert_eq!(t.op, "handshake", "{t}");
                assert!(refused_for_length(&t.message), "a handshake record of {len} bytes: {t}");
            }
            other => panic!("a handshake record of {len} bytes: expected Error::Tls, got {other:?}"),
        }
        assert!(took < PROMPT, "a handshake record of {len} bytes took {took:?} to be refused");
        drop(raw);
    }
    for max in [Version::Tls12, Version::Tls13] {
        for len in [0xFFFFu16, (1 << 14) + 2048 + 1] {
            let (c, s) = established(&l, max);
            (c.net_conn()).write_all(&[0x17, 0x03, 0x03, (len >> 8) as u8, len as u8]).unwrap();
            let e = assert_read_fails_promptly(&s, &format!("{max}: a record of {len} bytes"));
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{max}: a record of {len} bytes: {e:?}");
            assert!(refused_for_length(&e.to_string()), "{max}: a record of {len} bytes: {e}");
            drop(c);
        }
    }
    still_serves(&l);
}

#[cfg(target_os = "linux")]
/// A client sends the first half of a ClientHello and closes (FIN, not
/// reset), while the server is parked waiting for the rest: the handshake
/// fails at once, and the listener serves on.
#[test]
fn client_hello_cut_in_half_then_closed() {
    let hello = capture_client_hello(&client_config());
    let l = hostile_listener();
    let addr = l.local_addr().unwrap();
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.write_all(&hello[..hello.len() / 2]).unwrap();
    let s = Arc::new(l.accept().unwrap());
    let s2 = s.clone();
    let (tid, rx) = spawn_tracked(move || s2.handshake());
    until_parked(tid);
    let closed_at = Instant::now();
    drop(raw);
    let (r, at) = rx.recv_timeout(PATIENCE).expect("the handshake hangs after the client closed");
    match r {
        Err(tls::Error::Eof) | Err(tls::Error::Tls(_)) => {}
        other => panic!("a ClientHello cut in half: {other:?}"),
    }
    assert!(at - closed_at < PROMPT, "the close took {:?} to end the handshake", at - closed_at);
    still_serves(&l);
}

/// What the server's thread for one connection saw.
struct Served {
    result: Result<(), String>,
    timed_out: bool,
    took: Duration,
}

/// A hundred clients connect and never send a ClientHello. The server
/// serves each accepted connection on its own thread with a 300 ms
/// handshake timeout: each silent one fails with `HandshakeTimeout`, not
/// before 300 ms and not much after, and its socket is closed; meanwhile
/// real clients get through in far less time than a server working
/// through the silent ones in turn would take (100 x 300 ms).
#[test]
fn silent_clients_time_out_while_real_ones_are_served() {
    const SILENT: usize = 100;
    const REAL: usize = 5;
    const LIMIT: Duration = Duration::from_millis(300);
    raise_fd_limit(4096);
    let cfg = server_builder().handshake_timeout(LIMIT).build().unwrap();
    let l = tls::Listener::bind("127.0.0.1:0".parse().unwrap(), &cfg).unwrap();
    let addr = l.local_addr().unwrap();
    let (served_tx, served) = mpsc::channel::<Served>();
    let acceptor = thread::spawn(move || {
        l.set_deadline(Some(soon() + PATIENCE)).unwrap();
        let mut handlers = Vec::new();
        for _ in 0..SILENT + REAL {
            let s = l.accept().unwrap();
            let tx = served_tx.clone();
            handlers.push(thread::spawn(move || {
                let start = Instant::now();
                let r = s.handshake();
                let took = start.elapsed();
                let timed_out = matches!(r, Err(tls::Error::HandshakeTimeout(t)) if t == LIMIT);
                let result = r.map_err(|e| e.to_string()).and_then(|()| {
                    s.set_deadline(Some(soon())).unwrap();
                    let mut b = [0u8; 4];
                    (&s).read_exact(&mut b).map_err(|e| e.to_string())?;
                    (&s).write_all(&b).map_err(|e| e.to_string())
                });
                let _ = tx.send(Served { result, timed_out, took });
            }));
        }
        for h in handlers {
            h.join().unwrap();
        }
    });

    let silent: Vec<TcpStream> = (0..SILENT).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let cfg = client_config();
    let mut real_took = Vec::new();
    for _ in 0..REAL {
        let start = Instant::now();
        let mut c = dial(addr, &cfg).unwrap();
        c.write_all(b"real").unwrap();
        let mut b = [0u8; 4];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"real");
        real_took.push(start.elapsed());
    }

    // Every silent client's connection is closed by the server.
    for (i, mut s) in silent.into_iter().enumerate() {
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        match s.read(&mut [0u8; 64]) {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            other => panic!("silent client {i}: expected the server to close, got {other:?}"),
        }
    }
    acceptor.join().unwrap();
    let served: Vec<Served> = served.try_iter().collect();
    assert_eq!(served.len(), SILENT + REAL);
    let ok = served.iter().filter(|s| s.result.is_ok()).count();
    assert_eq!(ok, REAL, "every real client served");
    for s in served.iter().filter(|s| s.result.is_err()) {
        assert!(s.timed_out, "a silent client's handshake ended otherwise: {:?}", s.result);
        assert!(s.took >= LIMIT, "a handshake timed out early, after {:?}", s.took);
        assert!(s.took < LIMIT + PROMPT, "a handshake timed out far too late, after {:?}", s.took);
    }
    for t in real_took {
        assert!(t < PROMPT, "a real client waited {t:?} while silent ones were pending");
    }
}

/// Extra client certificates from the test CA (and one from the second,
/// untrusted CA), made once per process in the PKI directory:
/// `hostile-expired` (clientAuth, valid only in January 2020) and
/// `hostile-untrusted` (clientAuth, issued by ca2).
fn extra_certs() -> &'static Path {
    static DONE: OnceLock<()> = OnceLock::new();
    let dir = &pki().dir;
    DONE.get_or_init(|| {
        let run = |args: &[&str]| support::openssl(dir, args);
        for name in ["hostile-expired", "hostile-untrusted"] {
            run(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &format!("{name}.key"),
            ]);
            run(&[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-subj",
                "/CN=reseau client",
                "-out",
                &format!("{name}.csr"),
            ]);
        }
        std::fs::write(dir.join("hostile-index.txt"), "").unwrap();
        std::fs::write(dir.join("hostile.srl"), "2000\n").unwrap();
        std::fs::write(
            dir.join("hostile.cnf"),
            "[ ca ]\ndefault_ca = ca_default\n\
             [ ca_default ]\ndatabase = hostile-index.txt\nnew_certs_dir = .\nserial = hostile.srl\n\
             default_md = sha256\npolicy = policy_any\nunique_subject = no\nemail_in_dn = no\n\
             [ policy_any ]\ncommonName = supplied\n\
             [ ext ]\nextendedKeyUsage = clientAuth\n",
        )
        .unwrap();
        run(&[
            "ca",
            "-batch",
            "-config",
            "hostile.cnf",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca.key",
            "-in",
            "hostile-expired.csr",
            "-out",
            "hostile-expired.pem",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200201000000Z",
            "-extensions",
            "ext",
            "-notext",
        ]);
        std::fs::write(dir.join("hostile-untrusted.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "hostile-untrusted.csr",
            "-CA",
            "ca2.pem",
            "-CAkey",
            "ca2.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "hostile-untrusted.ext",
            "-out",
            "hostile-untrusted.pem",
        ]);
    });
    dir
}

/// Dial a RequireAndVerifyClientCert server with client certificate `name`
/// (`None`: none) and exchange a line. Returns the server's handshake
/// result and whether the client got through.
fn mutual(name: Option<&str>, max: Version) -> (Result<(), tls::Error>, Result<(), String>) {
    let pki = pki();
    let dir = extra_certs();
    let server_cfg = server_builder()
        .client_auth(ClientAuth::RequireAndVerifyClientCert)
        .client_ca_file(pki.path("ca.pem"))
        .max_version(max)
        .build()
        .unwrap();
    let mut client_cfg = client_builder().max_version(max);
    if let Some(name) = name {
        client_cfg = client_cfg.cert_file(dir.join(format!("{name}.pem"))).key_file(dir.join(format!("{name}.key")));
    }
    let client_cfg = client_cfg.build().unwrap();
    let (addr, server): (SocketAddr, _) = support::serve_one(&server_cfg, |mut c| {
        c.handshake()?;
        let mut b = [0u8; 4];
        c.read_exact(&mut b).map_err(tls::Error::Io)?;
        c.write_all(&b).map_err(tls::Error::Io)?;
        Ok(())
    });
    let client = (|| {
        let mut c = dial(addr, &client_cfg).map_err(|e| format!("handshake: {e}"))?;
        c.write_all(b"ping").map_err(|e| format!("write: {e}"))?;
        let mut b = [0u8; 4];
        c.read_exact(&mut b).map_err(|e| format!("read: {e}"))?;
        Ok(())
    })();
    (server.join().unwrap(), client)
}

/// A RequireAndVerifyClientCert server refuses a client certificate that
/// expired, one issued for another purpose and name (the `other.test`
/// server certificate, from the trusted CA), and one from a CA it does not
/// trust, under TLS 1.2 and 1.3, each for the right reason; the valid one
/// gets through. (Like Go, the server checks no name in a client
/// certificate: what it must check is the chain, the dates and the purpose.)
#[test]
fn bad_client_certificates_are_refused() {
    // `other` lives in the shared PKI directory; copy it next to ours.
    let dir = extra_certs();
    static COPIED: Mutex<bool> = Mutex::new(false);
    {
        let mut copied = COPIED.lock().unwrap();
        if !*copied {
            for ext in ["pem", "key"] {
                std::fs::copy(pki().path(&format!("other.{ext}")), dir.join(format!("hostile-other.{ext}"))).unwrap();
                std::fs::copy(pki().path(&format!("client.{ext}")), dir.join(format!("hostile-good.{ext}"))).unwrap();
            }
            *copied = true;
        }
    }
    for max in [Version::Tls12, Version::Tls13] {
        let (server, client) = mutual(Some("hostile-good"), max);
        assert!(server.is_ok() && client.is_ok(), "{max}: the valid client certificate: {server:?} / {client:?}");
        for (name, why) in [
            ("hostile-expired", "certificate has expired"),
            ("hostile-other", "unsuitable certificate purpose"),
            ("hostile-untrusted", "unable to get local issuer certificate"),
        ] {
            let (server, client) = mutual(Some(name), max);
            match &server {
                Err(tls::Error::Tls(t)) => assert!(t.message.contains(why), "{max} {name}: expected {why:?}, got {t}"),
                other => panic!("{max} {name}: the server should refuse with Error::Tls, got {other:?}"),
            }
            assert!(client.is_err(), "{max} {name}: the client should not get through");
        }
        let (server, client) = mutual(None, max);
        assert!(server.is_err() && client.is_err(), "{max}: no client certificate at all");
    }
}
