//! Dialing: happy eyeballs, serial fallback under a shared timeout, dial
//! timeouts and deadlines, refused connects, local addresses, service
//! names, `localhost`, and listening by address string.
//!
//! Everything talks to loopback only (127.0.0.0/8 and ::1); the only real
//! names looked up are `localhost` and `no-such-host.invalid`.

#![allow(clippy::result_large_err)]

mod support;

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use support::{BlackHole, LO4, LO6, Reserved, accept, assert_carries, black_holes, ip, ms, retry, sa, v4, v6};
use tcp::resolve::{ResolverPolicy, StaticResolver};
use tcp::{Dialer, Error, ListenConfig, Network};
use testkit::PATIENCE;

/// The dialed `conn` is connected to a connection `l` accepts: bytes go
/// through both ways.
fn assert_connected(conn: &mut tcp::Conn, l: &tcp::Listener) {
    let mut server = accept(l);
    // (A dual-stack listener sees an IPv4 peer as IPv4-mapped IPv6.)
    assert_eq!(canonical(server.remote_addr().unwrap()), canonical(conn.local_addr().unwrap()));
    conn.set_deadline(Some(Instant::now() + PATIENCE)).unwrap();
    server.set_deadline(Some(Instant::now() + PATIENCE)).unwrap();
    assert_carries(conn, &mut server);
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

fn resolver(name: &str, ips: &[IpAddr]) -> Arc<StaticResolver> {
    Arc::new(StaticResolver::new().host(name, ips.iter().copied()))
}

/// A listener on exactly `ip:port` (IPv6 only for an IPv6 address).
fn bind_exact(ip: IpAddr, port: u16) -> Option<tcp::Listener> {
    let net = if ip.is_ipv4() { Network::Tcp4 } else { Network::Tcp6 };
    ListenConfig::new().network(net).bind(SocketAddr::new(ip, port)).ok()
}

/// What an address does when dialed.
#[derive(Clone, Copy, Debug)]
enum Peer {
    /// A live listener.
    Answers,
    /// Nothing listens: refused at once.
    Refuses,
    /// A black hole: the connect hangs.
    Hangs,
    /// A black hole that frees a slot after this long, so a connect in
    /// progress completes when its SYN is retransmitted.
    AnswersAfter(Duration),
}

/// A [`Peer`] bound to its address.
enum Bound {
    Live(tcp::Listener),
    Refused(Reserved),
    Hole(BlackHole),
}

impl Bound {
    fn addr(&self) -> SocketAddr {
        match self {
            Bound::Live(l) => l.local_addr().unwrap(),
            Bound::Refused(r) => r.addr,
            Bound::Hole(h) => h.addr,
        }
    }

    fn listener(&self) -> &tcp::Listener {
        match self {
            Bound::Live(l) => l,
            _ => panic!("{} is not a live listener", self.addr()),
        }
    }
}

/// Each peer bound to its address, all on one port, as all addresses of
/// one name share it.
fn peers<const N: usize>(offered: [(IpAddr, Peer); N]) -> [Bound; N] {
    retry("peers on one port", || {
        let mut port = 0;
        let mut bound = Vec::with_capacity(N);
        for (ip, peer) in offered {
            let addr = SocketAddr::new(ip, port);
            let b = match peer {
                Peer::Answers => Bound::Live(bind_exact(ip, port)?),
                Peer::Refuses => Bound::Refused(Reserved::bind(addr)?),
                Peer::Hangs | Peer::AnswersAfter(_) => Bound::Hole(BlackHole::bind(addr)?),
            };
            port = b.addr().port();
            bound.push(b);
        }
        Some(bound.try_into().unwrap_or_else(|_| unreachable!()))
    })
}

// ---------------------------------------------------------------- fixtures

#[test]
fn black_hole_fixture_really_hangs() {
    let hole = BlackHole::bind(v4(Ipv4Addr::LOCALHOST, 0)).unwrap();
    let start = Instant::now();
    let err = Dialer::new().timeout(ms(200)).connect_addr(hole.addr).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(start.elapsed() >= ms(200));
    if support::ipv6_loopback("black_hole_fixture_really_hangs (v6)") {
        let hole = BlackHole::bind(v6(Ipv6Addr::LOCALHOST, 0)).unwrap();
        let err = Dialer::new().timeout(ms(200)).connect_addr(hole.addr).unwrap_err();
        assert!(err.is_timeout(), "{err}");
    }
}

// ---------------------------------------------------------- happy eyeballs

/// How a dial to `dual.test` ends.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    /// Connected to this address (at the shared port).
    Connects(IpAddr),
    /// Refused, and the error names this address: the primary's.
    Refused(IpAddr),
    /// Timed out on this address, the error saying this network.
    TimesOut(IpAddr, &'static str),
}

/// One happy-eyeballs case: `dual.test` resolves to `offered`, whose two
/// addresses behave as `v6` and `v4` say, on one port.
struct Race {
    name: &'static str,
    /// The resolver's answer, in its order.
    offered: [IpAddr; 2],
    /// What `::1` does.
    v6: Peer,
    /// What `127.0.0.1` does.
    v4: Peer,
    fallback_delay: Duration,
    timeout: Option<Duration>,
    /// The dialer's other settings (network, policy, dual stack).
    dialer: fn(Dialer) -> Dialer,
    expect: Outcome,
    /// The dial takes at least this long (a delay that must be waited)...
    at_least: Duration,
    /// ...and less than this (a delay that must not be).
    under: Duration,
}

/// What a case leaves unsaid: no timeout, no other setting, no lower
/// bound on the time taken, and [`PATIENCE`] as the upper one.
const DEFAULTS: Race = Race {
    name: "",
    offered: [LO6, LO4],
    v6: Peer::Hangs,
    v4: Peer::Answers,
    fallback_delay: Duration::ZERO,
    timeout: None,
    dialer: |d| d,
    expect: Outcome::Connects(LO4),
    at_least: Duration::ZERO,
    under: PATIENCE,
};

const NO_V6: ResolverPolicy = ResolverPolicy { prefer_ipv6: false, allow_ipv4: true, allow_ipv6: false };
const PREFER_V6: ResolverPolicy = ResolverPolicy { prefer_ipv6: true, allow_ipv4: true, allow_ipv6: true };

const RACES: &[Race] = &[
    Race {
        name: "a hanging IPv6 primary falls back to IPv4 after the delay",
        offered: [LO6, LO4],
        v6: Peer::Hangs,
        v4: Peer::Answers,
        fallback_delay: ms(100),
        timeout: Some(Duration::from_secs(20)),
        expect: Outcome::Connects(LO4),
        at_least: ms(100),
        ..DEFAULTS
    },
    Race {
        name: "a fallback delay of ZERO means the default, 300 ms",
        offered: [LO6, LO4],
        v6: Peer::Hangs,
        v4: Peer::Answers,
        fallback_delay: Duration::ZERO,
        timeout: Some(Duration::from_secs(20)),
        expect: Outcome::Connects(LO4),
        at_least: ms(300),
        ..DEFAULTS
    },
    Race {
        name: "a hanging IPv4 primary falls back to IPv6 after the delay",
        offered: [LO4, LO6],
        v6: Peer::Answers,
        v4: Peer::Hangs,
        fallback_delay: ms(100),
        timeout: Some(Duration::from_secs(20)),
        expect: Outcome::Connects(LO6),
        at_least: ms(100),
        ..DEFAULTS
    },
    Race {
        name: "a primary that connects wins without waiting for the delay",
        offered: [LO6, LO4],
        v6: Peer::Answers,
        v4: Peer::Hangs,
        fallback_delay: Duration::from_secs(3),
        timeout: Some(Duration::from_secs(20)),
        expect: Outcome::Connects(LO6),
        under: ms(2500),
        ..DEFAULTS
    },
    Race {
        name: "a refused primary starts the fallback at once",
        offered: [LO6, LO4],
        v6: Peer::Refuses,
        v4: Peer::Answers,
        fallback_delay: Duration::from_secs(3),
        timeout: Some(Duration::from_secs(20)),
        expect: Outcome::Connects(LO4),
        under: ms(2500),
        ..DEFAULTS
    },
    Race {
        name: "both refused reports the primary's error, at once",
        offered: [LO6, LO4],
        v6: Peer::Refuses,
        v4: Peer::Refuses,
        fallback_delay: Duration::from_secs(3),
        expect: Outcome::Refused(LO6),
        under: ms(2500),
        ..DEFAULTS
    },
    Race {
        // Both hang; after the fallback delay the fallback is in flight.
        // Then the IPv6 black hole frees a slot: the primary's
        // retransmitted SYN connects, the primary wins, and the fallback
        // attempt is cancelled rather than waited for.
        name: "a late primary beats a hanging fallback",
        offered: [LO6, LO4],
        v6: Peer::AnswersAfter(ms(400)),
        v4: Peer::Hangs,
        fallback_delay: ms(100),
        timeout: Some(Duration::from_secs(30)),
        expect: Outcome::Connects(LO6),
        at_least: ms(400),
        under: Duration::from_secs(15),
        ..DEFAULTS
    },
    Race {
        name: "a 1 ms fallback delay races IPv4 at once",
        offered: [LO6, LO4],
        v6: Peer::Hangs,
        v4: Peer::Answers,
        fallback_delay: ms(1),
        timeout: Some(PATIENCE),
        expect: Outcome::Connects(LO4),
        ..DEFAULTS
    },
    Race {
        // IPv6 is tried first and alone, and takes all the time there is
        // (the first address gets at least 2 s of a shared budget).
        name: "dual_stack(false) tries the addresses in order, without a race",
        offered: [LO6, LO4],
        v6: Peer::Hangs,
        v4: Peer::Answers,
        fallback_delay: ms(1),
        timeout: Some(ms(300)),
        dialer: |d| d.dual_stack(false),
        expect: Outcome::TimesOut(LO6, "tcp"),
        at_least: ms(300),
        ..DEFAULTS
    },
    Race {
        name: "dual_stack(true) turns the race back on",
        offered: [LO6, LO4],
        v6: Peer::Hangs,
        v4: Peer::Answers,
        fallback_delay: ms(1),
        timeout: Some(PATIENCE),
        dialer: |d| d.dual_stack(false).dual_stack(true),
        expect: Outcome::Connects(LO4),
        ..DEFAULTS
    },
    Race {
        name: "a policy without IPv6 dials only 127.0.0.1, at once",
        offered: [LO6, LO4],
        v6: Peer::Hangs,
        v4: Peer::Answers,
        fallback_delay: Duration::from_secs(3),
        dialer: |d| d.policy(NO_V6),
        expect: Outcome::Connects(LO4),
        under: ms(2500),
        ..DEFAULTS
    },
    Race {
        // The IPv6 address becomes the primary although the resolver
        // lists it second.
        name: "a policy preferring IPv6 tries it first",
        offered: [LO4, LO6],
        v6: Peer::Answers,
        v4: Peer::Hangs,
        fallback_delay: Duration::from_secs(3),
        dialer: |d| d.policy(PREFER_V6),
        expect: Outcome::Connects(LO6),
        under: ms(2500),
        ..DEFAULTS
    },
    Race {
        name: "tcp4 keeps only 127.0.0.1: it connects at once, no fallback delay",
        offered: [LO6, LO4],
        v6: Peer::Hangs,
        v4: Peer::Answers,
        fallback_delay: Duration::from_secs(3),
        dialer: |d| d.network(Network::Tcp4),
        expect: Outcome::Connects(LO4),
        under: ms(2500),
        ..DEFAULTS
    },
    Race {
        name: "tcp6 keeps only the black hole: no IPv4 fallback, so it times out",
        offered: [LO6, LO4],
        v6: Peer::Hangs,
        v4: Peer::Answers,
        fallback_delay: ms(10),
        timeout: Some(ms(300)),
        dialer: |d| d.network(Network::Tcp6),
        expect: Outcome::TimesOut(LO6, "tcp6"),
        at_least: ms(300),
        ..DEFAULTS
    },
];

impl Race {
    /// Bind the peers, dial, and check the outcome; every failure message
    /// starts with the case's name.
    fn run(&self) {
        let name = self.name;
        let [b6, b4] = peers([(LO6, self.v6), (LO4, self.v4)]);
        let port = b6.addr().port();
        let bound = |ip: IpAddr| if ip.is_ipv6() { &b6 } else { &b4 };
        let mut dialer = (self.dialer)(
            Dialer::new().resolver(resolver("dual.test", &self.offered)).fallback_delay(self.fallback_delay),
        );
        if let Some(timeout) = self.timeout {
            dialer = dialer.timeout(timeout);
        }
        let start = Instant::now();
        let result = thread::scope(|s| {
            for (b, peer) in [(&b6, self.v6), (&b4, self.v4)] {
                if let (Bound::Hole(hole), Peer::AnswersAfter(after)) = (b, peer) {
                    s.spawn(move || {
                        // The behaviour under test needs time to pass: the
                        // connect must still be pending well after the
                        // fallback delay.
                        thread::sleep(after);
                        hole.release_one();
                    });
                }
            }
            dialer.connect(&format!("dual.test:{port}"))
        });
        let elapsed = start.elapsed();
        match (self.expect, result) {
            (Outcome::Connects(ip), Ok(mut conn)) => {
                assert_eq!(conn.remote_addr().unwrap(), SocketAddr::new(ip, port), "{name}: the wrong address won");
                if let Bound::Live(l) = bound(ip) {
                    assert_connected(&mut conn, l);
                }
            }
            (Outcome::Refused(ip), Err(err)) => {
                assert_eq!(err.op, "dial", "{name}");
                let want = bound(ip).addr().to_string();
                assert_eq!(
                    err.addr.as_deref(),
                    Some(want.as_str()),
                    "{name}: the error names the wrong address: {err}"
                );
                match &err.err {
                    Error::Io(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{name}: {err}"),
                    other => panic!("{name}: want a refused Io error, got {other:?}"),
                }
            }
            (Outcome::TimesOut(ip, net), Err(err)) => {
                assert!(err.is_timeout() && matches!(err.err, Error::Timeout), "{name}: want a timeout, got {err:?}");
                assert_eq!(err.net, net, "{name}");
                let want = bound(ip).addr().to_string();
                assert_eq!(
                    err.addr.as_deref(),
                    Some(want.as_str()),
                    "{name}: the error names the wrong address: {err}"
                );
                // And the address that would have answered was never dialed.
                for b in [&b6, &b4] {
                    if let Bound::Live(l) = b {
                        l.set_deadline(Some(Instant::now() + ms(100))).unwrap();
                        assert!(l.accept().is_err(), "{name}: {} was dialed", b.addr());
                    }
                }
            }
            (want, got) => panic!("{name}: want {want:?}, got {:?} after {elapsed:?}", got.map(|c| c.remote_addr())),
        }
        assert!(
            elapsed >= self.at_least,
            "{name}: done after {elapsed:?}, before the {:?} it must wait",
            self.at_least
        );
        assert!(elapsed < self.under, "{name}: took {elapsed:?}, over {:?}", self.under);
    }
}

#[test]
fn happy_eyeballs() {
    if !support::ipv6_loopback("happy_eyeballs") {
        return;
    }
    assert_eq!(tcp::DEFAULT_FALLBACK_DELAY, ms(300));
    // The cases run side by side, each on a thread named after it, which
    // the panic message of a failing case shows.
    let failed: Vec<&str> = thread::scope(|s| {
        let runs: Vec<_> = RACES
            .iter()
            .map(|race| {
                (race.name, thread::Builder::new().name(race.name.into()).spawn_scoped(s, || race.run()).unwrap())
            })
            .collect();
        runs.into_iter().filter_map(|(name, run)| run.join().is_err().then_some(name)).collect()
    });
    assert!(failed.is_empty(), "happy eyeballs cases failed: {failed:#?}");
}

#[test]
fn happy_eyeballs_loser_connection_is_closed() {
    if !support::ipv6_loopback("happy_eyeballs_loser_connection_is_closed") {
        return;
    }
    // Go's TestDialParallelSpuriousConnection: both families are live and
    // the fallback starts at once, so both may connect. One conn is
    // returned; a connection the other made is closed, so its server
    // reads EOF and no data.
    let [l6, l4] = peers([(LO6, Peer::Answers), (LO4, Peer::Answers)]);
    let (l6, l4) = (l6.listener(), l4.listener());
    let port = l6.local_addr().unwrap().port();
    // A losing connection carries no data: its server reads EOF (or a reset).
    let assert_spurious = |mut c: tcp::Conn| {
        c.set_read_deadline(Some(Instant::now() + PATIENCE)).unwrap();
        let mut buf = [0; 8];
        match c.read(&mut buf) {
            Ok(n) => assert_eq!(n, 0, "the losing connection must carry no data"),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "the losing connection was not closed: {e}"),
        }
    };
    for _ in 0..8 {
        let mut conn = Dialer::new()
            .resolver(resolver("dual.test", &[LO6, LO4]))
            .fallback_delay(Duration::from_nanos(1))
            .timeout(Duration::from_secs(20))
            .connect(&format!("dual.test:{port}"))
            .unwrap();
        let (winner, loser) = if conn.remote_addr().unwrap().is_ipv6() { (l6, l4) } else { (l4, l6) };
        // The winner's server side (a late loser of an earlier round may be
        // queued before it).
        let mut server = loop {
            let c = accept(winner);
            if c.remote_addr().unwrap() == conn.local_addr().unwrap() {
                break c;
            }
            assert_spurious(c);
        };
        conn.write_all(b"ping").unwrap();
        let mut buf = [0; 4];
        server.set_read_deadline(Some(Instant::now() + PATIENCE)).unwrap();
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        // The loser may never have connected; give it a moment to show up.
        loser.set_deadline(Some(Instant::now() + ms(100))).unwrap();
        while let Ok(spurious) = loser.accept() {
            assert_spurious(spurious);
        }
    }
}

#[test]
fn happy_eyeballs_in_a_green_thread_suspends_only_that_green_thread() {
    if !support::ipv6_loopback("happy_eyeballs_in_a_green_thread_suspends_only_that_green_thread") {
        return;
    }
    let (h6, h4) = black_holes();
    let (resolver, target) = (resolver("dual.test", &[LO6, LO4]), format!("dual.test:{}", h6.addr.port()));
    let live = tcp::listen("127.0.0.1:0").unwrap();
    let live_addr = live.local_addr().unwrap();
    // One worker: if the race blocked it, nothing else could run.
    let pool = green::Pool::new(1).unwrap();
    let (tx, order) = mpsc::channel();
    let racing = tx.clone();
    let race = pool.spawn(move || {
        let deadline = Instant::now() + ms(300);
        let dialer = Dialer::new().resolver(resolver).fallback_delay(Duration::from_nanos(1)).deadline(deadline);
        let result = dialer.connect(&target);
        racing.send("race").unwrap();
        result
    });
    let plain = pool.spawn(move || {
        let result = tcp::connect_addr(live_addr);
        tx.send("plain").unwrap();
        result
    });
    assert_eq!(order.recv_timeout(PATIENCE).unwrap(), "plain", "the plain dial waited for the race");
    assert_eq!(order.recv_timeout(PATIENCE).unwrap(), "race");
    plain.join().unwrap().unwrap();
    let err = race.join().unwrap().unwrap_err();
    assert!(err.is_timeout(), "{err}");
    pool.shutdown();
    drop((h6, h4));
}

// ------------------------------------------------- serial, shared deadline

#[test]
fn serial_fallback_after_a_refused_address() {
    let [refused, live] = peers([(ip("127.0.0.2"), Peer::Refuses), (ip("127.0.0.3"), Peer::Answers)]);
    let port = refused.addr().port();
    let start = Instant::now();
    let mut conn = Dialer::new()
        .network(Network::Tcp4)
        .resolver(resolver("multi.test", &[ip("127.0.0.2"), ip("127.0.0.3")]))
        .timeout(Duration::from_secs(20))
        .connect(&format!("multi.test:{port}"))
        .unwrap();
    assert!(start.elapsed() < PATIENCE);
    assert_eq!(conn.remote_addr().unwrap(), v4("127.0.0.3".parse().unwrap(), port));
    assert_connected(&mut conn, live.listener());
    drop(refused);
}

#[test]
fn serial_fallback_shares_the_timeout_like_go() {
    // Two addresses under a 3 s timeout: the first (a black hole) gets
    // max(3 s / 2, min(3 s, 2 s)) = 2 s, not all 3 s and not 1.5 s; the
    // second then connects in the time left.
    let [hole, live] = peers([(ip("127.0.0.2"), Peer::Hangs), (ip("127.0.0.3"), Peer::Answers)]);
    let port = hole.addr().port();
    let start = Instant::now();
    let result = Dialer::new()
        .network(Network::Tcp4)
        .resolver(resolver("multi.test", &[ip("127.0.0.2"), ip("127.0.0.3")]))
        .timeout(Duration::from_secs(3))
        .connect(&format!("multi.test:{port}"));
    let elapsed = start.elapsed();
    let mut conn =
        result.unwrap_or_else(|e| panic!("the second address must get the time left: {e} after {elapsed:?}"));
    assert!(elapsed >= Duration::from_secs(2), "the first address got less than 2 s: {elapsed:?}");
    assert_eq!(conn.remote_addr().unwrap(), v4("127.0.0.3".parse().unwrap(), port));
    assert_connected(&mut conn, live.listener());
    drop(hole);
}

#[test]
fn serial_first_address_gets_all_of_a_short_timeout() {
    // Under 2 s left, the first address gets all of it: the second is
    // never reached and the error names the first.
    let [hole, _live] = peers([(ip("127.0.0.2"), Peer::Hangs), (ip("127.0.0.3"), Peer::Answers)]);
    let port = hole.addr().port();
    let start = Instant::now();
    let err = Dialer::new()
        .network(Network::Tcp4)
        .resolver(resolver("multi.test", &[ip("127.0.0.2"), ip("127.0.0.3")]))
        .timeout(ms(600))
        .connect(&format!("multi.test:{port}"))
        .unwrap_err();
    let elapsed = start.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert!(matches!(err.err, Error::Timeout), "{:?}", err.err);
    assert!(elapsed >= ms(600), "{elapsed:?}");
    assert!(elapsed < PATIENCE, "{elapsed:?}");
    assert_eq!(err.addr.as_deref(), Some(hole.addr().to_string().as_str()));
}

/// A slow resolver: it records the deadline it was given, takes `delay`
/// (or until that deadline, if `honours_deadline`), then answers
/// 127.0.0.1, or a timeout if the deadline has passed and it honours it.
struct Slow {
    delay: Duration,
    honours_deadline: bool,
    seen: parking_lot::Mutex<Vec<Option<Instant>>>,
}

impl tcp::resolve::Resolver for Slow {
    fn lookup_ip(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<IpAddr>, tcp::LookupError> {
        self.seen.lock().push(deadline);
        let mut until = Instant::now() + self.delay;
        if self.honours_deadline {
            until = deadline.map_or(until, |d| d.min(until));
        }
        // Being slow is the behaviour under test.
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
        if self.honours_deadline && deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(tcp::LookupError::timeout(host));
        }
        Ok(vec![LO4])
    }

    fn lookup_port(&self, service: &str) -> Result<u16, tcp::LookupError> {
        Err(tcp::LookupError::other(service, "unknown port"))
    }
}

#[test]
fn dial_timeout_bounds_name_resolution() {
    let slow = Arc::new(Slow { delay: Duration::from_secs(30), honours_deadline: true, seen: Default::default() });
    let start = Instant::now();
    let err = Dialer::new().resolver(slow.clone()).timeout(ms(150)).connect("slow.test:80").unwrap_err();
    let elapsed = start.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert!(matches!(&err.err, Error::Lookup(l) if l.is_timeout && l.host == "slow.test"), "{:?}", err.err);
    assert!(elapsed >= ms(150) && elapsed < PATIENCE, "{elapsed:?}");
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::TimedOut);
    // The resolver was handed the dial's deadline.
    let seen = slow.seen.lock()[0].expect("the resolver gets the dial deadline");
    assert!(seen >= start + ms(150) && seen <= start + ms(150) + PATIENCE, "{:?}", seen - start);
}

/// A resolver that ignores its deadline: each call says it started, then
/// waits for the test to release it, then answers `answer`.
struct Stuck {
    started: std::sync::Mutex<mpsc::Sender<()>>,
    release: std::sync::Mutex<mpsc::Receiver<()>>,
    answered: std::sync::Mutex<mpsc::Sender<()>>,
    answer: IpAddr,
}

/// The channels a test holds on a `Stuck` resolver: told when a lookup
/// starts, able to release it, told when it has answered.
struct StuckControls {
    started: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
    answered: mpsc::Receiver<()>,
}

impl Stuck {
    /// A resolver that answers `answer` once released, and its controls.
    fn new(answer: IpAddr) -> (Arc<Stuck>, StuckControls) {
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let (answered_tx, answered) = mpsc::channel();
        let stuck = Stuck {
            started: std::sync::Mutex::new(started_tx),
            release: std::sync::Mutex::new(release_rx),
            answered: std::sync::Mutex::new(answered_tx),
            answer,
        };
        (Arc::new(stuck), StuckControls { started, release, answered })
    }
}

impl tcp::resolve::Resolver for Stuck {
    fn lookup_ip(&self, _host: &str, _deadline: Option<Instant>) -> Result<Vec<IpAddr>, tcp::LookupError> {
        let _ = self.started.lock().unwrap().send(());
        let _ = self.release.lock().unwrap().recv();
        let _ = self.answered.lock().unwrap().send(());
        Ok(vec![self.answer])
    }

    fn lookup_port(&self, service: &str) -> Result<u16, tcp::LookupError> {
        Err(tcp::LookupError::other(service, "unknown port"))
    }
}

#[test]
fn dial_timeout_holds_against_a_resolver_that_ignores_it() {
    let live = tcp::listen("127.0.0.1:0").unwrap();
    let port = live.local_addr().unwrap().port();
    let (stuck, StuckControls { started, release, answered }) = Stuck::new(LO4);
    let start = Instant::now();
    let err = Dialer::new().resolver(stuck).timeout(ms(50)).connect(&format!("stuck.test:{port}")).unwrap_err();
    assert!(start.elapsed() >= ms(50), "timed out early");
    // The resolver was asked and is still held: the dial returned first.
    started.recv_timeout(PATIENCE).expect("the resolver was called");
    assert!(answered.try_recv().is_err(), "the resolver answered before it was released");
    assert!(err.is_timeout(), "{err}");
    assert!(matches!(&err.err, Error::Lookup(l) if l.is_timeout && l.host == "stuck.test"), "{:?}", err.err);
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::TimedOut);

    // Released, it answers; the late answer is dropped: nothing is dialed.
    release.send(()).unwrap();
    answered.recv_timeout(PATIENCE).expect("the released resolver answers");
    live.set_deadline(Some(Instant::now() + ms(100))).unwrap();
    assert!(live.accept().is_err(), "a connection was made after the dial timed out");
}

#[test]
fn dial_deadline_holds_against_a_resolver_that_ignores_it_in_many_dials() {
    // Several dials at once, each stuck in the resolver: all return on
    // time. (Fewer than the lookup threads, so other tests' lookups, which
    // share them, are not held up.)
    let (stuck, StuckControls { started, release, answered: _answered }) = Stuck::new(LO4);
    let dials: Vec<_> = (0..6)
        .map(|_| {
            let stuck = stuck.clone();
            std::thread::spawn(move || {
                let deadline = Instant::now() + ms(50);
                Dialer::new().resolver(stuck).deadline(deadline).connect("stuck.test:1").unwrap_err()
            })
        })
        .collect();
    for dial in dials {
        let err = dial.join().unwrap();
        assert!(err.is_timeout(), "{err}");
    }
    started.recv_timeout(PATIENCE).expect("the resolver was called");
    drop(release);
}

#[test]
fn a_stuck_lookup_in_a_green_thread_suspends_only_that_green_thread() {
    let (stuck, StuckControls { started, release, answered: _answered }) = Stuck::new(LO4);
    let live = tcp::listen("127.0.0.1:0").unwrap();
    let live_addr = live.local_addr().unwrap();
    // One worker: a dial that blocked it would hold up the other green thread.
    let pool = green::Pool::new(1).unwrap();
    let (tx, order) = mpsc::channel();
    let stuck_tx = tx.clone();
    let stuck_dial = pool.spawn(move || {
        let result = Dialer::new().resolver(stuck).timeout(Duration::from_secs(3)).connect("stuck.test:80");
        stuck_tx.send("stuck").unwrap();
        result
    });
    started.recv_timeout(PATIENCE).expect("the resolver was called");
    let plain = pool.spawn(move || {
        let result = tcp::connect_addr(live_addr);
        tx.send("plain").unwrap();
        result
    });
    assert_eq!(order.recv_timeout(PATIENCE).unwrap(), "plain", "the plain dial waited for the stuck lookup");
    plain.join().unwrap().unwrap();
    // The stuck dial still ends at its timeout, the resolver still held.
    assert_eq!(order.recv_timeout(PATIENCE).unwrap(), "stuck");
    assert!(stuck_dial.join().unwrap().unwrap_err().is_timeout());
    drop(release);
    pool.shutdown();
}

struct Panicking;

impl tcp::resolve::Resolver for Panicking {
    fn lookup_ip(&self, _host: &str, _deadline: Option<Instant>) -> Result<Vec<IpAddr>, tcp::LookupError> {
        panic!("a resolver bug (expected by the test)");
    }

    fn lookup_port(&self, service: &str) -> Result<u16, tcp::LookupError> {
        Err(tcp::LookupError::other(service, "unknown port"))
    }
}

#[test]
fn a_panicking_resolver_under_a_deadline_fails_the_dial_and_spares_the_lookup_threads() {
    // More dials than lookup threads: a panic must not cost a thread.
    for _ in 0..40 {
        let err = Dialer::new().resolver(Arc::new(Panicking)).timeout(PATIENCE).connect("bug.test:80").unwrap_err();
        assert!(matches!(&err.err, Error::Lookup(l) if l.message == "lookup panicked"), "{err}");
        assert!(!err.is_timeout(), "{err}");
    }
}

// ------------------------------------------------------ timeouts, refused

#[test]
fn dial_timeout_on_a_black_hole() {
    let hole = BlackHole::bind(v4(Ipv4Addr::LOCALHOST, 0)).unwrap();
    let start = Instant::now();
    let err = Dialer::new().timeout(ms(50)).connect(&hole.addr.to_string()).unwrap_err();
    let elapsed = start.elapsed();
    assert!(elapsed >= ms(50), "timed out early: {elapsed:?}");
    assert!(elapsed < PATIENCE, "{elapsed:?}");
    assert!(err.is_timeout() && err.err.is_timeout(), "{err}");
    assert!(matches!(err.err, Error::Timeout), "{:?}", err.err);
    assert_eq!(err.op, "dial");
    assert_eq!(err.net, "tcp");
    assert_eq!(err.to_string(), format!("dial tcp {}: i/o timeout", hole.addr));
    let io: io::Error = err.into();
    assert_eq!(io.kind(), io::ErrorKind::TimedOut);

    // connect_addr, and a deadline a little ahead: the same.
    let start = Instant::now();
    let err = Dialer::new().deadline(Instant::now() + ms(80)).connect_addr(hole.addr).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(start.elapsed() >= ms(80));
    // With both, the earlier wins.
    let start = Instant::now();
    let err = Dialer::new()
        .timeout(Duration::from_secs(30))
        .deadline(Instant::now() + ms(80))
        .connect_addr(hole.addr)
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(start.elapsed() >= ms(80) && start.elapsed() < PATIENCE, "{:?}", start.elapsed());
}

#[test]
fn dial_past_deadline_fails_at_once() {
    let hole = BlackHole::bind(v4(Ipv4Addr::LOCALHOST, 0)).unwrap();
    let now = Instant::now();
    let past = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
    let start = Instant::now();
    let err = Dialer::new().deadline(past).connect(&hole.addr.to_string()).unwrap_err();
    assert!(start.elapsed() < ms(1000), "a past deadline must fail at once: {:?}", start.elapsed());
    assert!(err.is_timeout(), "{err}");
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::TimedOut);
    let err = Dialer::new().deadline(past).connect_addr(hole.addr).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    // Even a live address is not dialed.
    let live = tcp::listen("127.0.0.1:0").unwrap();
    let err = Dialer::new().deadline(past).connect_addr(live.local_addr().unwrap()).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let err = Dialer::new().deadline(now).connect(&live.local_addr().unwrap().to_string()).unwrap_err();
    assert!(err.is_timeout(), "a deadline of now has passed: {err}");
}

#[test]
fn refused_port() {
    let reserved = Reserved::bind(v4(Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = reserved.addr;
    let err = tcp::connect(&addr.to_string()).unwrap_err();
    match &err.err {
        Error::Io(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e:?}"),
        other => panic!("want Error::Io(refused), got {other:?}"),
    }
    assert!(!err.is_timeout());
    assert_eq!(err.op, "dial");
    assert_eq!(err.net, "tcp");
    assert_eq!(err.local_addr, None);
    assert_eq!(err.addr.as_deref(), Some(addr.to_string().as_str()));
    assert_eq!(err.to_string(), format!("dial tcp 127.0.0.1:{}: connection refused", addr.port()));
    let io: io::Error = err.into();
    assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
    let err = tcp::connect_addr(addr).unwrap_err();
    assert!(matches!(&err.err, Error::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused), "{err}");

    // And a listener that was closed: refused too.
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    if let Err(err) = tcp::connect(&addr.to_string()) {
        // (Someone may have taken the port meanwhile; then it connects.)
        assert!(matches!(&err.err, Error::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused), "{err}");
        assert_eq!(err.to_string(), format!("dial tcp 127.0.0.1:{}: connection refused", addr.port()));
    }
}

#[test]
fn prohibitionary_dial_args() {
    // Go's TestProhibitionaryDialArg: tcp6 never reaches an IPv4 address,
    // not even spelled as an IPv4-mapped IPv6 address.
    let live = tcp::listen("127.0.0.1:0").unwrap();
    let port = live.local_addr().unwrap().port();
    for address in [format!("127.0.0.1:{port}"), format!("[::ffff:127.0.0.1]:{port}")] {
        let err = Dialer::new().network(Network::Tcp6).connect(&address).unwrap_err();
        match &err.err {
            Error::Lookup(l) => assert_eq!(l.message, "no suitable address found", "{address}"),
            Error::Address(a) => assert_eq!(a.message, "no suitable address found", "{address}"),
            other => panic!("{address}: want no suitable address, got {other:?}"),
        }
    }
    let err = Dialer::new().network(Network::Tcp6).connect_addr(v4(Ipv4Addr::LOCALHOST, port)).unwrap_err();
    assert!(matches!(&err.err, Error::Address(a) if a.message == "no suitable address found"), "{err}");
    // tcp4 the other way round.
    let err = Dialer::new().network(Network::Tcp4).connect(&format!("[::1]:{port}")).unwrap_err();
    assert!(matches!(&err.err, Error::Lookup(l) if l.message == "no suitable address found"), "{err}");
    // An IPv4-mapped address is dialed as IPv4.
    let mut conn = tcp::connect(&format!("[::ffff:127.0.0.1]:{port}")).unwrap();
    assert_eq!(conn.remote_addr().unwrap(), v4(Ipv4Addr::LOCALHOST, port));
    assert_connected(&mut conn, &live);
}

// ------------------------------------------------------------- local addr

#[test]
fn local_addr_binds_the_source() {
    let live = tcp::listen("127.0.0.1:0").unwrap();
    let source: IpAddr = ip("127.0.0.2");
    let conn = Dialer::new().local_addr(SocketAddr::new(source, 0)).connect_addr(live.local_addr().unwrap()).unwrap();
    assert_eq!(conn.local_addr().unwrap().ip(), source);
    let server = accept(&live);
    assert_eq!(server.remote_addr().unwrap().ip(), source);
    assert_eq!(server.remote_addr().unwrap(), conn.local_addr().unwrap());
    drop(server);

    // Through a name with both families: only the IPv4 one is dialed.
    let port = live.local_addr().unwrap().port();
    let mut conn2 = Dialer::new()
        .local_addr(SocketAddr::new(source, 0))
        .resolver(resolver("dual.test", &[LO6, LO4]))
        .connect(&format!("dual.test:{port}"))
        .unwrap();
    assert_eq!(conn2.remote_addr().unwrap(), v4(Ipv4Addr::LOCALHOST, port));
    assert_eq!(conn2.local_addr().unwrap().ip(), source);
    assert_connected(&mut conn2, &live);
    conn.close().unwrap();
}

#[test]
fn local_addr_of_the_other_family_is_no_suitable_address() {
    let live = tcp::listen("127.0.0.1:0").unwrap();
    let port = live.local_addr().unwrap().port();
    let local = v6(Ipv6Addr::LOCALHOST, 0);
    let check = |err: tcp::OpError| {
        assert_eq!(err.op, "dial");
        assert_eq!(err.local_addr, Some(local));
        match &err.err {
            Error::Address(a) => assert_eq!(a.message, "no suitable address found"),
            other => panic!("want an Address error, got {other:?}"),
        }
        assert!(err.to_string().ends_with("no suitable address found"), "{err}");
    };
    check(Dialer::new().local_addr(local).connect(&format!("127.0.0.1:{port}")).unwrap_err());
    check(Dialer::new().local_addr(local).connect_addr(v4(Ipv4Addr::LOCALHOST, port)).unwrap_err());
    let r = resolver("v4only.test", &[LO4, ip("127.0.0.2")]);
    check(Dialer::new().local_addr(local).resolver(r).connect(&format!("v4only.test:{port}")).unwrap_err());
    // And an IPv4 source for an IPv6-only name.
    let r = resolver("v6only.test", &[LO6]);
    let err = Dialer::new().local_addr(v4(Ipv4Addr::LOCALHOST, 0)).resolver(r).connect("v6only.test:1").unwrap_err();
    assert!(matches!(&err.err, Error::Address(a) if a.message == "no suitable address found"), "{err}");
}

// ---------------------------------------------------- ports and services

#[test]
fn service_name_through_the_resolver() {
    let live = tcp::listen("127.0.0.1:0").unwrap();
    let port = live.local_addr().unwrap().port();
    let r = Arc::new(StaticResolver::new().port("mysvc", port));
    let mut conn = Dialer::new().resolver(r.clone()).connect("127.0.0.1:mysvc").unwrap();
    assert_eq!(conn.remote_addr().unwrap(), v4(Ipv4Addr::LOCALHOST, port));
    assert_connected(&mut conn, &live);
    // Case-insensitive.
    let mut conn = Dialer::new().resolver(r).connect("127.0.0.1:MySvc").unwrap();
    assert_eq!(conn.remote_addr().unwrap().port(), port);
    assert_connected(&mut conn, &live);
}

#[test]
fn well_known_service_through_the_system_resolver() {
    // "http" is port 80 (from /etc/services or the built-in table). There
    // may or may not be a server on 127.0.0.1:80; either way the port was
    // resolved and the address parsed.
    match Dialer::new().timeout(Duration::from_secs(5)).connect("127.0.0.1:http") {
        Ok(conn) => assert_eq!(conn.remote_addr().unwrap(), v4(Ipv4Addr::LOCALHOST, 80)),
        Err(err) => {
            assert!(!matches!(err.err, Error::Address(_) | Error::Lookup(_)), "{err}");
            assert_eq!(err.addr.as_deref(), Some("127.0.0.1:80"), "{err}");
        }
    }
    // An unknown service is a lookup error, before any dial.
    let err = tcp::connect("127.0.0.1:no-such-service-zz").unwrap_err();
    match &err.err {
        Error::Lookup(l) => assert!(l.is_not_found, "{l:?}"),
        other => panic!("want a Lookup error, got {other:?}"),
    }
}

// ------------------------------------------------------- localhost, ":p"

#[test]
fn localhost_through_the_system_resolver() {
    let l = tcp::listen("localhost:0").unwrap();
    let laddr = l.local_addr().unwrap();
    assert!(laddr.ip().is_loopback(), "{laddr}");
    assert_ne!(laddr.port(), 0);
    let mut conn =
        Dialer::new().timeout(Duration::from_secs(10)).connect(&format!("localhost:{}", laddr.port())).unwrap();
    let raddr = conn.remote_addr().unwrap();
    assert!(raddr.ip().is_loopback(), "{raddr}");
    assert_eq!(raddr.port(), laddr.port());
    assert_connected(&mut conn, &l);
}

#[test]
fn empty_host_dials_the_local_system() {
    // Go's TestDialLocal: ":port" reaches a local listener.
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut conn = tcp::connect(&format!(":{port}")).unwrap();
    assert_eq!(conn.remote_addr().unwrap(), v4(Ipv4Addr::LOCALHOST, port));
    assert_connected(&mut conn, &l);
}

#[test]
fn unknown_name_is_a_lookup_error() {
    // The .invalid TLD never resolves. Without working DNS it is still a
    // lookup error; never a dial.
    let err = Dialer::new().timeout(Duration::from_secs(20)).connect("no-such-host.invalid:80").unwrap_err();
    assert_eq!(err.op, "dial");
    assert_eq!(err.addr, None);
    match &err.err {
        Error::Lookup(l) => {
            assert_eq!(l.host, "no-such-host.invalid");
            if !l.is_not_found {
                eprintln!("unknown_name_is_a_lookup_error: DNS not usable here: {l}");
            }
        }
        other => panic!("want a Lookup error, got {other:?}"),
    }
}

// -------------------------------------------------------------- listening

#[test]
fn listen_on_all_interfaces() {
    let l = tcp::listen(":0").unwrap();
    let laddr = l.local_addr().unwrap();
    assert!(laddr.ip().is_unspecified(), "{laddr}");
    assert_ne!(laddr.port(), 0);
    let mut conn = tcp::connect_addr(v4(Ipv4Addr::LOCALHOST, laddr.port())).unwrap();
    assert_connected(&mut conn, &l);
    if laddr.is_ipv6() {
        let mut conn = tcp::connect_addr(v6(Ipv6Addr::LOCALHOST, laddr.port())).unwrap();
        assert_connected(&mut conn, &l);
        // Go's TestDialListenerAddr: "[::]:port" with tcp4 means 0.0.0.0.
        let mut conn = Dialer::new().network(Network::Tcp4).connect(&format!("[::]:{}", laddr.port())).unwrap();
        let raddr = conn.remote_addr().unwrap();
        assert!(raddr.is_ipv4() && raddr.ip().is_loopback() && raddr.port() == laddr.port(), "{raddr}");
        assert_connected(&mut conn, &l);
    } else {
        eprintln!("listen_on_all_interfaces: listening on IPv4 only ({laddr})");
    }
    // An explicit empty host with tcp4 is 0.0.0.0.
    let l4 = ListenConfig::new().network(Network::Tcp4).listen(":0").unwrap();
    assert_eq!(l4.local_addr().unwrap().ip(), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
}

#[test]
fn listen_on_loopback_and_bind() {
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let laddr = l.local_addr().unwrap();
    assert_eq!(laddr.ip(), LO4);
    assert_ne!(laddr.port(), 0);
    let mut conn = tcp::connect_addr(laddr).unwrap();
    assert_connected(&mut conn, &l);

    let b = ListenConfig::new().bind(sa("127.0.0.1:0")).unwrap();
    let baddr = b.local_addr().unwrap();
    assert_eq!(baddr.ip(), LO4);
    let mut conn = tcp::connect(&baddr.to_string()).unwrap();
    assert_connected(&mut conn, &b);

    // bind checks the family against the network.
    let err = ListenConfig::new().network(Network::Tcp6).bind(sa("127.0.0.1:0")).unwrap_err();
    assert_eq!(err.op, "listen");
    assert!(matches!(&err.err, Error::Address(a) if a.message == "no suitable address found"), "{err}");
}

#[test]
fn listen_on_a_port_in_use() {
    let l = tcp::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    for cfg in [ListenConfig::new().reuseaddr(false), ListenConfig::new()] {
        let err = cfg.listen(&addr.to_string()).unwrap_err();
        assert_eq!(err.op, "listen");
        assert_eq!(err.net, "tcp");
        assert_eq!(err.addr.as_deref(), Some(addr.to_string().as_str()));
        match &err.err {
            Error::Io(e) => assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e:?}"),
            other => panic!("want Error::Io(AddrInUse), got {other:?}"),
        }
        assert_eq!(err.to_string(), format!("listen tcp {addr}: address already in use"));
        let err = cfg.bind(addr).unwrap_err();
        assert_eq!(err.op, "listen");
        assert!(matches!(&err.err, Error::Io(e) if e.kind() == io::ErrorKind::AddrInUse), "{err}");
    }
    // Unknown network strings never get this far.
    assert!(matches!("udp".parse::<Network>(), Err(Error::UnknownNetwork(n)) if n == "udp"));
}
