//! TLS over loopback: bulk throughput, and full and resumed handshakes per
//! second, reseau against the `openssl` crate's `SslStream` over std's
//! `TcpStream`. The same OpenSSL runs underneath, and the `openssl` crate's
//! ends are set to the suite reseau's defaults negotiate and to reseau's
//! one ticket per handshake, so the difference is the plumbing alone.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use openssl::ssl::{SslAcceptor, SslConnector, SslMethod, SslSession, SslSessionCacheMode, SslVerifyMode};

use crate::harness::{Bench, Better, Mode};
use crate::traffic::{pump, sink};

struct Setup {
    ours_server: tls::Config,
    /// The same certificate, served by a `certificate_resolver` that hands
    /// out a ready `CertifiedKey` (the cost of choosing at handshake time).
    ours_resolved: tls::Config,
    ours_client: tls::Config,
    /// The client with session resumption on (reseau's default).
    ours_resuming: tls::Config,
    /// The `openssl` crate set to reseau's suite and ticket count, so that
    /// only the plumbing differs.
    theirs: Theirs,
    /// The `openssl` crate with OpenSSL's own defaults (AES-256-GCM first,
    /// two tickets per handshake): what its users get.
    defaults: Theirs,
    /// The key-exchange group and cipher suite reseau's ends negotiate.
    group: String,
    suite: String,
}

/// One configuration of the `openssl` crate's ends.
struct Theirs {
    server: SslAcceptor,
    client: SslConnector,
    /// A client that keeps the newest session its server hands out, and a
    /// place for it: what a user of the `openssl` crate writes to resume.
    resuming: SslConnector,
    session: Arc<Mutex<Option<SslSession>>>,
}

/// Both libraries' configurations; `groups` (OpenSSL's colon-separated
/// names) replaces OpenSSL's default key-exchange groups on every end.
fn setup(groups: Option<&str>) -> Setup {
    // The tests' self-signed localhost certificate (its own trust anchor),
    // made once per process with the openssl command line.
    let id = testkit::certs::localhost();
    let with_groups = |b: tls::ConfigBuilder| match groups {
        Some(g) => b.curve_preferences(g.split(':')),
        None => b,
    };
    let ours_server =
        with_groups(tls::Config::builder().cert_file(&id.cert).key_file(&id.key)).build().expect("server config");
    let client = || with_groups(tls::Config::builder().ca_file(&id.cert).server_name("localhost"));
    let ours_client = client().session_resumption(false).build().expect("client config");
    let ours_resuming = client().session_resumption(true).build().expect("client config");
    let (group, suite) = negotiated(&ours_server, &ours_client);
    let key = tls::CertifiedKey::from_files(&id.cert, &id.key).expect("certified key");
    let ours_resolved = with_groups(tls::Config::builder().certificate_resolver(move |_| Ok(Some(key.clone()))))
        .build()
        .expect("resolver config");
    Setup {
        ours_server,
        ours_resolved,
        ours_client,
        ours_resuming,
        theirs: theirs(id, groups, Some(&suite)),
        defaults: theirs(id, groups, None),
        group,
        suite,
    }
}

/// The `openssl` crate's ends on the certificate `id`: with `like` (a
/// TLS 1.3 suite), that suite and one ticket per handshake, as reseau's;
/// without, OpenSSL's defaults.
fn theirs(id: &testkit::certs::SelfSigned, groups: Option<&str>, like: Option<&str>) -> Theirs {
    let mut acc = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
    if let Some(suite) = like {
        acc.set_ciphersuites(suite).expect("suite");
        acc.set_num_tickets(1).expect("tickets");
    }
    acc.set_certificate_chain_file(&id.cert).expect("cert");
    acc.set_private_key_file(&id.key, openssl::ssl::SslFiletype::PEM).expect("key");
    if let Some(g) = groups {
        acc.set_groups_list(g).expect("groups");
    }
    let connector = || {
        let mut con = SslConnector::builder(SslMethod::tls()).expect("connector");
        con.set_ca_file(&id.cert).expect("ca");
        con.set_verify(SslVerifyMode::PEER);
        if let Some(suite) = like {
            con.set_ciphersuites(suite).expect("suite");
        }
        if let Some(g) = groups {
            con.set_groups_list(g).expect("groups");
        }
        con
    };
    let session = Arc::new(Mutex::new(None));
    let mut resuming = connector();
    resuming.set_session_cache_mode(SslSessionCacheMode::CLIENT);
    let slot = session.clone();
    resuming.set_new_session_callback(move |_, s| *slot.lock().expect("session slot") = Some(s));
    Theirs { server: acc.build(), client: connector().build(), resuming: resuming.build(), session }
}

/// Which handshakes a run makes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No session to resume: certificate, signature, key exchange.
    Full,
    /// Each client resumes the session of the one before (a TLS 1.3 PSK
    /// with a fresh key exchange).
    Resumed,
}

pub fn run(b: &mut Bench) {
    if !b.wants("tls") {
        return;
    }
    let s = setup(None);
    let total: usize = if b.mode == Mode::Full { 2 << 30 } else { 512 << 20 };
    b.compare(
        &format!("tls bulk one-way (256 KiB writes, {})", s.suite),
        "MB/s",
        "openssl SslStream",
        Some((1.0, Better::Higher)),
        || bulk_ours(&s, total),
        || bulk_theirs(&s, total),
    );
    // Three times the rounds, each a third as long: a round's ratio moves
    // by ±10 % with where the two threads land on this kind of machine.
    let (n, rounds) = if b.mode == Mode::Full { (700, 3 * b.rounds()) } else { (170, 3 * b.rounds()) };
    // Each kind twice: against the crate set to reseau's suite and ticket
    // count (the plumbing alone), and against its own defaults.
    for (kind, name) in
        [(Kind::Full, format!("tls full handshakes ({})", s.group)), (Kind::Resumed, "tls resumed handshakes".into())]
    {
        for (theirs, how, peer) in [
            (&s.theirs, "same suite and tickets", "openssl SslStream"),
            (&s.defaults, "each side's defaults", "openssl, its defaults"),
        ] {
            b.compare_in(
                rounds,
                &format!("{name}, {how}"),
                "hs/s",
                peer,
                Some((1.0, Better::Higher)),
                || handshakes_ours(&s, n, kind),
                || handshakes_theirs(theirs, n, kind),
            );
        }
    }
    // Issue 24: a resolver returning a ready key costs at most 3 % of the
    // static pair's full-handshake rate, in the same run.
    b.compare_in(
        rounds,
        &format!("tls full handshakes ({}), certificate_resolver vs static pair", s.group),
        "hs/s",
        "reseau static pair",
        Some((0.97, Better::Higher)),
        || handshakes_with(&s.ours_resolved, &s.ours_client, n, Kind::Full),
        || handshakes_with(&s.ours_server, &s.ours_client, n, Kind::Full),
    );
    let msgs = if b.mode == Mode::Full { 50_000 } else { 10_000 };
    b.compare(
        "tls echo rtt, Waker on turn() vs blocking",
        "msg/s",
        "reseau blocking",
        Some((0.8, Better::Higher)),
        || echo_rtt(&s, msgs, Driver::Waker),
        || echo_rtt(&s, msgs, Driver::Blocking),
    );
}

/// How the client side of `echo_rtt` waits.
#[derive(Clone, Copy)]
enum Driver {
    /// `Read`/`Write` on the global runtime.
    Blocking,
    /// `poll_*` on an embedded runtime, turned by this thread when pending.
    Waker,
}

/// `n` 64-byte messages, each echoed back before the next, against a
/// blocking reseau TLS echo server; messages per second.
fn echo_rtt(s: &Setup, n: usize, driver: Driver) -> f64 {
    const MSG: usize = 64;
    let l = tls::listen("127.0.0.1:0", &s.ours_server).expect("listen");
    let addr = l.local_addr().expect("addr");
    let server = thread::spawn(move || {
        let c = l.accept().expect("accept");
        let (mut r, mut w) = (&c, &c);
        std::io::copy(&mut r, &mut w).expect("echo")
    });
    let msg = [7u8; MSG];
    let mut back = [0u8; MSG];
    let rate = match driver {
        Driver::Blocking => {
            let mut c = tls::connect_addr(addr, &s.ours_client).expect("connect");
            let start = Instant::now();
            for _ in 0..n {
                c.write_all(&msg).expect("write");
                c.read_exact(&mut back).expect("read");
            }
            let rate = n as f64 / start.elapsed().as_secs_f64();
            c.close_write().expect("close_notify");
            rate
        }
        Driver::Waker => {
            let rt = iopoll::Runtime::new().expect("runtime");
            let tcp = tcp::Dialer::new().runtime(rt.clone()).connect_addr(addr).expect("connect");
            let c = tls::client(tcp, &s.ours_client).expect("client");
            // A single task on this thread: the reactor's wake-up is the turn
            // returning, so the Waker itself has nothing to do.
            let mut cx = Context::from_waker(Waker::noop());
            let turn = || {
                rt.turn(None).expect("turn");
            };
            while c.poll_handshake(&mut cx).map(|r| r.expect("handshake")).is_pending() {
                turn();
            }
            let start = Instant::now();
            for _ in 0..n {
                let mut sent = 0;
                while sent < MSG {
                    match c.poll_write(&mut cx, &msg[sent..]) {
                        Poll::Ready(r) => sent += r.expect("write"),
                        Poll::Pending => turn(),
                    }
                }
                while c.poll_flush(&mut cx).map(|r| r.expect("flush")).is_pending() {
                    turn();
                }
                let mut got = 0;
                while got < MSG {
                    match c.poll_read(&mut cx, &mut back[got..]) {
                        Poll::Ready(r) => got += r.expect("read"),
                        Poll::Pending => turn(),
                    }
                }
            }
            let rate = n as f64 / start.elapsed().as_secs_f64();
            c.close_write().expect("close_notify");
            rate
        }
    };
    assert_eq!(back, msg);
    server.join().expect("server");
    rate
}

fn bulk_ours(s: &Setup, total: usize) -> f64 {
    let l = tls::listen("127.0.0.1:0", &s.ours_server).expect("listen");
    let addr = l.local_addr().expect("addr");
    let start = Instant::now();
    let server = thread::spawn(move || sink(l.accept().expect("accept")));
    let c = tls::connect_addr(addr, &s.ours_client).expect("connect");
    pump(&c, total);
    c.close_write().expect("close_notify");
    assert_eq!(server.join().expect("server"), total);
    total as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn bulk_theirs(s: &Setup, total: usize) -> f64 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let acc = s.theirs.server.clone();
    let start = Instant::now();
    let server = thread::spawn(move || {
        let (t, _) = l.accept().expect("accept");
        t.set_nodelay(true).expect("nodelay");
        sink(acc.accept(t).expect("handshake"))
    });
    let t = TcpStream::connect(addr).expect("connect");
    t.set_nodelay(true).expect("nodelay");
    let mut c = s.theirs.client.connect("localhost", t).expect("handshake");
    pump(&mut c, total);
    c.shutdown().expect("close_notify");
    assert_eq!(server.join().expect("server"), total);
    total as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// The key-exchange group and the cipher suite reseau's client and server
/// agree on.
fn negotiated(server: &tls::Config, client: &tls::Config) -> (String, String) {
    let l = tls::listen("127.0.0.1:0", server).expect("listen");
    let addr = l.local_addr().expect("addr");
    let server = thread::spawn(move || l.accept().expect("accept").handshake().expect("handshake"));
    let c = tls::connect_addr(addr, client).expect("connect");
    server.join().expect("server");
    let st = c.connection_state();
    (st.group.unwrap_or_else(|| "group unknown".into()), st.cipher_suite.expect("a TLS 1.3 suite"))
}

/// `n` sequential handshakes of `kind`, each followed by a one-byte
/// exchange so both ends have really finished (and a resuming client has
/// its ticket), and a clean close (close_notify), which reseau's `close`
/// sends as Go's does. A resumed run starts with one full handshake, not
/// timed, for the first session.
fn handshakes_ours(s: &Setup, n: usize, kind: Kind) -> f64 {
    let client = if kind == Kind::Resumed { &s.ours_resuming } else { &s.ours_client };
    handshakes_with(&s.ours_server, client, n, kind)
}

/// [`handshakes_ours`] with this server and client.
fn handshakes_with(server_config: &tls::Config, config: &tls::Config, n: usize, kind: Kind) -> f64 {
    let l = tls::listen("127.0.0.1:0", server_config).expect("listen");
    let addr = l.local_addr().expect("addr");
    let warm = usize::from(kind == Kind::Resumed);
    let server = thread::spawn(move || {
        for _ in 0..warm + n {
            let mut c = l.accept().expect("accept");
            let mut b = [0u8];
            c.read_exact(&mut b).expect("read");
            c.write_all(&b).expect("write");
        }
    });
    // The same work as the peer: connect to an address, verify "localhost".
    let once = || {
        let mut c = tls::connect_addr(addr, config).expect("connect");
        c.write_all(b"x").expect("write");
        let mut b = [0u8];
        c.read_exact(&mut b).expect("read");
        c
    };
    let (rate, last) = timed(warm, n, once);
    let resumed = last.connection_state().session_resumed;
    assert_eq!(resumed, kind == Kind::Resumed, "reseau's last handshake resumed: {resumed}");
    server.join().expect("server");
    rate
}

/// Run `once` `warm` times untimed (a resumed run's first, full
/// handshake), then `n` times on the clock: the rate per second and the
/// last connection, kept open for its caller to inspect.
fn timed<C>(warm: usize, n: usize, mut once: impl FnMut() -> C) -> (f64, C) {
    for _ in 0..warm {
        once();
    }
    let start = Instant::now();
    let mut last = None;
    for _ in 0..n {
        last = Some(once());
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    (rate, last.expect("at least one handshake"))
}

fn handshakes_theirs(s: &Theirs, n: usize, kind: Kind) -> f64 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let acc = s.server.clone();
    let warm = usize::from(kind == Kind::Resumed);
    let server = thread::spawn(move || {
        for _ in 0..warm + n {
            let (t, _) = l.accept().expect("accept");
            t.set_nodelay(true).expect("nodelay");
            let mut c = acc.accept(t).expect("handshake");
            let mut b = [0u8];
            c.read_exact(&mut b).expect("read");
            c.write_all(&b).expect("write");
            c.shutdown().expect("close_notify");
        }
    });
    // No session from an earlier run: its first handshake is a full one.
    *s.session.lock().expect("session slot") = None;
    let once = || {
        let t = TcpStream::connect(addr).expect("connect");
        t.set_nodelay(true).expect("nodelay");
        t.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut c = match kind {
            Kind::Full => s.client.connect("localhost", t),
            Kind::Resumed => {
                let mut cfg = s.resuming.configure().expect("configure");
                if let Some(session) = s.session.lock().expect("session slot").as_ref() {
                    // SAFETY: the session came from this connector's context.
                    unsafe { cfg.set_session(session) }.expect("set_session");
                }
                cfg.connect("localhost", t)
            }
        }
        .expect("handshake");
        c.write_all(b"x").expect("write");
        let mut b = [0u8];
        c.read_exact(&mut b).expect("read");
        c.shutdown().expect("close_notify");
        c
    };
    let (rate, last) = timed(warm, n, once);
    let resumed = last.ssl().session_reused();
    assert_eq!(resumed, kind == Kind::Resumed, "the openssl crate's last handshake resumed: {resumed}");
    server.join().expect("server");
    rate
}

/// `--handshake-loop ours|theirs|theirs-defaults full|resumed N [GROUPS]`:
/// only `n` handshakes of one side (`theirs`: the `openssl` crate set to
/// reseau's suite and ticket count; `theirs-defaults`: with OpenSSL's
/// defaults), in a process of their own, for `perf stat` or
/// `strace -c` to count per handshake; `GROUPS` (`X25519`, `P-256`, ...)
/// instead of OpenSSL's default groups. Prints the rate, the group, and
/// this process's CPU time and context switches per handshake over the
/// loop alone (getrusage).
pub fn handshake_loop(who: &str, kind: &str, n: usize, groups: Option<&str>) {
    let kind = match kind {
        "full" => Kind::Full,
        "resumed" => Kind::Resumed,
        other => panic!("a handshake kind, full or resumed, not {other:?}"),
    };
    let s = setup(groups);
    let group = s.group.clone();
    let before = usage();
    let rate = match who {
        "ours" => handshakes_ours(&s, n, kind),
        "theirs" => handshakes_theirs(&s.theirs, n, kind),
        "theirs-defaults" => handshakes_theirs(&s.defaults, n, kind),
        other => panic!("ours, theirs or theirs-defaults, not {other:?}"),
    };
    let after = usage();
    let per = |a: f64, b: f64| (b - a) / n as f64;
    println!(
        "{who} {} {group}: {rate:.0} hs/s, {:.0} µs CPU ({:.0} user, {:.0} sys), {:.1} context switches per handshake",
        if kind == Kind::Full { "full" } else { "resumed" },
        per(before.user + before.sys, after.user + after.sys),
        per(before.user, after.user),
        per(before.sys, after.sys),
        per(before.switches, after.switches),
    );
}

/// This process's CPU time (µs) and context switches so far.
struct Usage {
    user: f64,
    sys: f64,
    switches: f64,
}

fn usage() -> Usage {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut ru), 0, "getrusage");
        ru
    };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    Usage { user: us(ru.ru_utime), sys: us(ru.ru_stime), switches: (ru.ru_nvcsw + ru.ru_nivcsw) as f64 }
}
