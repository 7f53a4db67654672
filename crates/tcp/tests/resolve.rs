//! Name resolution: address strings (Go's `SplitHostPort` rules), family
//! filtering and ordering, the singleflight and caching resolvers, the
//! system resolver (`localhost` and `*.invalid` only) and service ports.
//!
//! No real DNS names other than `localhost` and `*.invalid`; nothing here
//! connects anywhere.

mod support;

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use support::{LO4, LO6, TestResolver, ip, ms, sa, wait_until};
use tcp::resolve::{
    self, CachingResolver, Resolver, ResolverPolicy, SingleflightResolver, StaticResolver, SystemResolver,
    resolve_tcp_addrs,
};
use tcp::{Error, LookupError, OpError};
use testkit::PATIENCE;

fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    list.iter().map(|s| sa(s)).collect()
}

fn policy(prefer_ipv6: bool, allow_ipv4: bool, allow_ipv6: bool) -> ResolverPolicy {
    ResolverPolicy { prefer_ipv6, allow_ipv4, allow_ipv6 }
}

fn mixed() -> StaticResolver {
    // Resolution only: nothing is dialed.
    StaticResolver::new().host("mixed.test", [LO4, LO6, ip("127.0.0.2"), ip("2001:db8::1")]).host("v4.test", [LO4])
}

fn no_suitable(err: OpError, host: &str) {
    assert_eq!(err.op, "resolve");
    match &err.err {
        Error::Lookup(l) => {
            assert_eq!(l.message, "no suitable address found");
            assert_eq!(l.host, host);
        }
        other => panic!("want Lookup(no suitable address found), got {other:?}"),
    }
}

// ------------------------------------------------- filtering and ordering

#[test]
fn policy_filters_and_orders() {
    let r = mixed();
    let def = ResolverPolicy::default();
    assert_eq!(def, policy(false, true, true));
    let all = addrs(&["127.0.0.1:80", "[::1]:80", "127.0.0.2:80", "[2001:db8::1]:80"]);
    assert_eq!(resolve_tcp_addrs("tcp", "mixed.test:80", &r, def, None).unwrap(), all, "resolver order kept");
    // prefer_ipv6: IPv6 first, each family in resolver order (stable).
    let v6_first = addrs(&["[::1]:80", "[2001:db8::1]:80", "127.0.0.1:80", "127.0.0.2:80"]);
    assert_eq!(resolve_tcp_addrs("tcp", "mixed.test:80", &r, policy(true, true, true), None).unwrap(), v6_first);
    // Families switched off.
    assert_eq!(
        resolve_tcp_addrs("tcp", "mixed.test:80", &r, policy(false, false, true), None).unwrap(),
        addrs(&["[::1]:80", "[2001:db8::1]:80"])
    );
    assert_eq!(
        resolve_tcp_addrs("tcp", "mixed.test:80", &r, policy(true, true, false), None).unwrap(),
        addrs(&["127.0.0.1:80", "127.0.0.2:80"])
    );
    // Networks.
    assert_eq!(
        resolve_tcp_addrs("tcp4", "mixed.test:80", &r, policy(true, true, true), None).unwrap(),
        addrs(&["127.0.0.1:80", "127.0.0.2:80"])
    );
    assert_eq!(
        resolve_tcp_addrs("tcp6", "mixed.test:80", &r, def, None).unwrap(),
        addrs(&["[::1]:80", "[2001:db8::1]:80"])
    );
    // Nothing left.
    no_suitable(
        resolve_tcp_addrs("tcp", "mixed.test:80", &r, policy(false, false, false), None).unwrap_err(),
        "mixed.test",
    );
    no_suitable(resolve_tcp_addrs("tcp6", "v4.test:80", &r, def, None).unwrap_err(), "v4.test");
    no_suitable(resolve_tcp_addrs("tcp", "v4.test:80", &r, policy(false, false, true), None).unwrap_err(), "v4.test");
    no_suitable(resolve_tcp_addrs("tcp4", "[::1]:80", &r, def, None).unwrap_err(), "::1");
    no_suitable(resolve_tcp_addrs("tcp6", "127.0.0.1:80", &r, def, None).unwrap_err(), "127.0.0.1");
    let err = resolve_tcp_addrs("tcp6", "v4.test:80", &r, def, None).unwrap_err();
    assert_eq!(err.to_string(), "resolve tcp6: lookup v4.test: no suitable address found");
}

#[test]
fn literals_names_and_ports() {
    let r = mixed().port("mysvc", 4242);
    let def = ResolverPolicy::default();
    let one = |net: &str, a: &str| resolve_tcp_addrs(net, a, &r, def, None).unwrap();
    assert_eq!(one("tcp", "127.0.0.1:80"), addrs(&["127.0.0.1:80"]));
    assert_eq!(one("tcp", "[::1]:443"), addrs(&["[::1]:443"]));
    assert_eq!(one("tcp", "127.0.0.1:"), addrs(&["127.0.0.1:0"]), "empty port is 0");
    assert_eq!(one("tcp", "127.0.0.1:+80"), addrs(&["127.0.0.1:80"]));
    assert_eq!(one("tcp", "v4.test:http"), addrs(&["127.0.0.1:80"]), "built-in service table");
    assert_eq!(one("tcp", "v4.test:HTTPS"), addrs(&["127.0.0.1:443"]), "services are case-insensitive");
    assert_eq!(one("tcp", "V4.Test.:mysvc"), addrs(&["127.0.0.1:4242"]), "names: case and trailing dot");
    // Empty host: the wildcards (IPv4 first for resolve).
    assert_eq!(one("tcp", ":80"), addrs(&["0.0.0.0:80", "[::]:80"]));
    assert_eq!(one("tcp4", ":80"), addrs(&["0.0.0.0:80"]));
    assert_eq!(one("tcp6", ":80"), addrs(&["[::]:80"]));
    // IPv6 zones: a numeric zone is the scope id.
    let scoped = one("tcp", "[fe80::1%7]:80");
    assert!(matches!(scoped[0], SocketAddr::V6(a) if a.scope_id() == 7 && a.port() == 80), "{scoped:?}");
    // IPv4-mapped IPv6 is IPv4 (Go): it dedupes with, and filters as, IPv4.
    assert_eq!(one("tcp", "[::ffff:127.0.0.1]:80"), addrs(&["127.0.0.1:80"]));
    no_suitable(resolve_tcp_addrs("tcp6", "[::ffff:127.0.0.1]:80", &r, def, None).unwrap_err(), "::ffff:127.0.0.1");
    let dup = StaticResolver::new().host("dup.test", [LO4, ip("::ffff:127.0.0.1"), LO6, LO4, LO6]);
    assert_eq!(
        resolve_tcp_addrs("tcp", "dup.test:1", &dup, def, None).unwrap(),
        addrs(&["127.0.0.1:1", "[::1]:1"]),
        "duplicates dropped, first occurrence kept"
    );
    // Unknown names and services.
    let err = resolve_tcp_addrs("tcp", "nope.test:80", &r, def, None).unwrap_err();
    assert!(matches!(&err.err, Error::Lookup(l) if l.is_not_found && l.host == "nope.test"), "{err}");
    let err = resolve_tcp_addrs("tcp", "v4.test:no-such-svc", &r, def, None).unwrap_err();
    assert!(matches!(&err.err, Error::Lookup(l) if l.is_not_found), "{err}");
    // A past deadline stops a name lookup (literals need none).
    let past = Instant::now();
    assert!(resolve_tcp_addrs("tcp", "v4.test:80", &r, def, Some(past)).unwrap_err().is_timeout());
    assert_eq!(resolve_tcp_addrs("tcp", "127.0.0.1:80", &r, def, Some(past)).unwrap(), addrs(&["127.0.0.1:80"]));
}

#[test]
fn static_resolver_falls_back() {
    let inner = Arc::new(TestResolver::new(&[("other.test", &[ip("127.0.0.9")])]));
    let r = StaticResolver::new().host("pinned.test", [LO4]).port("svc", 7).fallback(inner.clone());
    assert_eq!(r.lookup_ip("pinned.test", None).unwrap(), vec![LO4]);
    assert_eq!(inner.calls(), 0, "pinned names never reach the fallback");
    assert_eq!(r.lookup_ip("other.test", None).unwrap(), vec![ip("127.0.0.9")]);
    assert_eq!(inner.calls(), 1);
    assert!(r.lookup_ip("nope.test", None).unwrap_err().is_not_found);
    assert_eq!(r.lookup_port("svc").unwrap(), 7);
    assert_eq!(r.lookup_ip("127.0.0.5", None).unwrap(), vec![ip("127.0.0.5")], "literals answer themselves");
    // Without a fallback an unknown name is not found.
    let err = StaticResolver::new().lookup_ip("nope.test", None).unwrap_err();
    assert!(err.is_not_found && !err.is_timeout, "{err:?}");
}

#[test]
fn unknown_network() {
    let r = mixed();
    for net in ["udp", "", "tcp5", "TCP", "ip"] {
        let err = resolve_tcp_addrs(net, "127.0.0.1:80", &r, ResolverPolicy::default(), None).unwrap_err();
        assert_eq!(err.op, "resolve");
        assert!(matches!(&err.err, Error::UnknownNetwork(n) if n == net), "{net:?}: {err:?}");
    }
    let err = resolve_tcp_addrs("udp", "127.0.0.1:80", &r, ResolverPolicy::default(), None).unwrap_err();
    assert_eq!(err.to_string(), "resolve udp: unknown network udp");
}

// ------------------------------------------------------ malformed strings

const MALFORMED: &[(&str, &str)] = &[
    ("127.0.0.1", "missing port in address"),
    ("localhost", "missing port in address"),
    ("[::1]", "missing port in address"),
    ("[::1]x:80", "missing port in address"),
    ("[a]]:80", "missing port in address"),
    ("127.0.0.1:65536", "invalid port"),
    ("127.0.0.1:99999999999999999999", "invalid port"),
    ("127.0.0.1:-1", "invalid port"),
    ("127.0.0.1:+", "invalid port"),
    ("[::1]:70000", "invalid port"),
    ("[::1:80", "missing ']' in address"),
    ("[::1", "missing ']' in address"),
    ("::1:80", "too many colons in address"),
    ("a:b:80", "too many colons in address"),
    ("[::1]:80:90", "too many colons in address"),
    ("a[b:80", "unexpected '[' in address"),
    ("[[a]:80", "unexpected '[' in address"),
    ("a]b:80", "unexpected ']' in address"),
    ("127.0.0.1%lo:80", "zone on IPv4 address"),
    ("[127.0.0.1%1]:80", "zone on IPv4 address"),
    ("[fe80::1%]:80", "invalid scoped address zone"),
    ("[fe80::1%no-such-if-zz]:80", "unknown interface zone"),
    ("[fe80::1%99999999999]:80", "invalid scope id"),
];

fn assert_address_error(err: &OpError, op: &str, input: &str, message: &str) {
    assert_eq!(err.op, op, "{input}");
    assert_eq!(err.addr, None, "{input}: nothing was dialed or bound");
    match &err.err {
        Error::Address(a) => {
            assert_eq!(a.message, message, "{input}");
            assert_eq!(a.addr, input, "{input}");
        }
        other => panic!("{input}: want Error::Address({message}), got {other:?}"),
    }
}

#[test]
fn malformed_addresses_through_connect_listen_and_resolve() {
    let r = mixed();
    for &(input, message) in MALFORMED {
        assert_address_error(&tcp::connect(input).unwrap_err(), "dial", input, message);
        assert_address_error(&tcp::listen(input).unwrap_err(), "listen", input, message);
        let err = resolve_tcp_addrs("tcp", input, &r, ResolverPolicy::default(), None).unwrap_err();
        assert_address_error(&err, "resolve", input, message);
        let err = tcp::Dialer::new().resolver(Arc::new(r.clone())).connect(input).unwrap_err();
        assert_address_error(&err, "dial", input, message);
        // io::Error: InvalidInput.
        assert_eq!(std::io::Error::from(err).kind(), std::io::ErrorKind::InvalidInput);
    }
    assert_eq!(
        tcp::connect("127.0.0.1").unwrap_err().to_string(),
        "dial tcp: address 127.0.0.1: missing port in address"
    );
    assert_eq!(
        tcp::listen("::1:80").unwrap_err().to_string(),
        "listen tcp: address ::1:80: too many colons in address"
    );
    // An empty address: nothing to dial; for listen it has no port.
    let err = tcp::connect("").unwrap_err();
    assert!(matches!(&err.err, Error::Address(a) if a.message == "missing address"), "{err:?}");
    assert_address_error(&tcp::listen("").unwrap_err(), "listen", "", "missing port in address");
}

#[test]
fn split_host_port_like_go() {
    let ok: &[(&str, (&str, &str))] = &[
        ("localhost:80", ("localhost", "80")),
        ("[::1]:443", ("::1", "443")),
        ("[fe80::1%eth0]:80", ("fe80::1%eth0", "80")),
        (":80", ("", "80")),
        ("golang.org:", ("golang.org", "")),
        ("[::1]:", ("::1", "")),
        (":", ("", "")),
        ("host%zone:http", ("host%zone", "http")),
    ];
    for &(input, want) in ok {
        assert_eq!(tcp::split_host_port(input).unwrap(), want, "{input}");
    }
    for &(input, message) in MALFORMED.iter().filter(|(_, m)| !m.contains("port") || m.starts_with("missing port")) {
        if message.contains("zone") || message.contains("scope") {
            continue; // literal checks come after splitting
        }
        let e = tcp::split_host_port(input).unwrap_err();
        assert_eq!((e.message.as_str(), e.addr.as_str()), (message, input));
    }
    assert_eq!(tcp::join_host_port("::1", 80), "[::1]:80");
    assert_eq!(tcp::join_host_port("fe80::1%eth0", "http"), "[fe80::1%eth0]:http");
    assert_eq!(tcp::join_host_port("127.0.0.1", 80), "127.0.0.1:80");
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Up to `max` characters: mostly from `alphabet`, some whole `words`, some
/// arbitrary bytes and characters.
fn noise(rng: &mut Rng, max: usize, alphabet: &[u8], words: &[&str]) -> String {
    let len = rng.below(max + 1);
    let mut s = String::new();
    while s.len() < len {
        match rng.below(10) {
            0 => s.push(char::from_u32(rng.below(0x800) as u32).unwrap_or('\u{fffd}')),
            1 => s.push(char::from(rng.below(256) as u8)),
            2 => s.push_str(words[rng.below(words.len())]),
            _ => s.push(char::from(alphabet[rng.below(alphabet.len())])),
        }
    }
    s
}

/// A host: a word (often a valid one), or noise.
fn part(rng: &mut Rng, alphabet: &[u8], words: &[&str]) -> String {
    match rng.below(3) {
        0 => noise(rng, 12, alphabet, words),
        _ => words[rng.below(words.len())].to_string(),
    }
}

/// A port: digits (sometimes too many), a service name, or noise.
fn port(rng: &mut Rng, alphabet: &[u8]) -> String {
    match rng.below(4) {
        0 => noise(rng, 6, alphabet, &["http", "+", "-"]),
        1 => ["http", "https", "ssh", "nosuch", "", "+80", "-1", "65536"][rng.below(8)].to_string(),
        _ => (rng.next() % 100_000).to_string(),
    }
}

#[test]
fn fuzz_address_strings_never_panic() {
    const ALPHABET: &[u8] = b"[]:%.0123456789abcdef:zloeth+-";
    const WORDS: &[&str] =
        &["::", "::1", "127.0.0.1", "fe80::1", "%lo", "%1", "[", "]", ":80", "mixed.test", "v4.test", "http"];
    let r = mixed();
    let policies =
        [ResolverPolicy::default(), policy(true, true, true), policy(false, false, true), policy(true, true, false)];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut oks = 0;
    for i in 0..20_000 {
        // A third pure noise, the rest shaped like "host:port" or
        // "[host]:port" with noisy parts, so the later stages run too.
        let s = match rng.below(3) {
            0 => noise(&mut rng, 24, ALPHABET, WORDS),
            1 => format!("{}:{}", part(&mut rng, ALPHABET, WORDS), port(&mut rng, ALPHABET)),
            _ => format!("[{}]:{}", part(&mut rng, ALPHABET, WORDS), port(&mut rng, ALPHABET)),
        };
        let net = ["tcp", "tcp4", "tcp6"][i % 3];
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if let Ok((host, port)) = tcp::split_host_port(&s) {
                assert!(!host.contains(['[', ']']), "host {host:?} of {s:?}");
                assert!(!port.contains([':', '[', ']']), "port {port:?} of {s:?}");
            }
            match resolve_tcp_addrs(net, &s, &r, policies[i % policies.len()], None) {
                Ok(list) => {
                    assert!(!list.is_empty(), "{s:?}: an empty success");
                    true
                }
                Err(e) => {
                    assert_eq!(e.op, "resolve");
                    assert!(!matches!(e.err, Error::UnknownNetwork(_) | Error::Io(_)), "{s:?}: {e:?}");
                    let _ = e.to_string();
                    false
                }
            }
        }));
        match outcome {
            Ok(ok) => oks += usize::from(ok),
            Err(_) => panic!("panicked on {s:?} (network {net})"),
        }
    }
    // The generator does reach the success paths too.
    assert!(oks > 1000, "only {oks} of 20000 resolved");
}

// ------------------------------------------------------------ singleflight

#[test]
fn singleflight_coalesces_concurrent_lookups() {
    let sf = Arc::new(SingleflightResolver::new(TestResolver::new(&[("slow.test", &[LO4, LO6])]).gated()));
    let names = ["slow.test", "SLOW.test", "slow.test.", "Slow.Test"];
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let sf = sf.clone();
            thread::spawn(move || sf.lookup_ip(names[i % names.len()], None))
        })
        .collect();
    wait_until("one lookup is in the inner resolver and 7 wait for it", || {
        sf.inner().calls() == 1 && sf.waiting() == 7
    });
    assert_eq!(sf.inner().calls(), 1);
    sf.inner().release();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for r in &results {
        assert_eq!(r.as_ref().unwrap(), &vec![LO4, LO6]);
    }
    assert_eq!(sf.inner().calls(), 1, "one inner call for 8 lookups");
    assert_eq!(sf.lookups(), 1);
    assert_eq!(sf.shared(), 7);
    assert_eq!(sf.waiting(), 0);
    // Nothing is kept afterwards: the next lookup asks again.
    assert_eq!(sf.lookup_ip("slow.test", None).unwrap(), vec![LO4, LO6]);
    assert_eq!(sf.inner().calls(), 2);
}

#[test]
fn singleflight_shares_failures_and_keeps_names_apart() {
    let sf = Arc::new(SingleflightResolver::new(TestResolver::new(&[("a.test", &[LO4])]).gated()));
    let spawn = |name: &'static str| {
        let sf = sf.clone();
        thread::spawn(move || sf.lookup_ip(name, None))
    };
    let missing: Vec<_> = (0..4).map(|_| spawn("missing.test")).collect();
    let other = spawn("a.test");
    wait_until("two leaders in the inner resolver, 3 waiting", || sf.inner().calls() == 2 && sf.waiting() == 3);
    sf.inner().release();
    for h in missing {
        let err = h.join().unwrap().unwrap_err();
        assert!(err.is_not_found, "{err:?}");
        assert_eq!(err.host, "missing.test");
    }
    assert_eq!(other.join().unwrap().unwrap(), vec![LO4]);
    assert_eq!(sf.inner().calls(), 2, "one call per name");
}

#[test]
fn singleflight_follower_leaves_at_its_deadline() {
    let sf = Arc::new(SingleflightResolver::new(TestResolver::new(&[("slow.test", &[LO4])]).gated()));
    let leader = {
        let sf = sf.clone();
        thread::spawn(move || sf.lookup_ip("slow.test", None))
    };
    wait_until("the leader is in the inner resolver", || sf.inner().calls() == 1);
    let start = Instant::now();
    let err = sf.lookup_ip("slow.test", Some(Instant::now() + ms(100))).unwrap_err();
    let elapsed = start.elapsed();
    assert!(err.is_timeout && !err.is_not_found, "{err:?}");
    assert_eq!(err.host, "slow.test");
    assert!(elapsed >= ms(100), "left before its deadline: {elapsed:?}");
    assert!(elapsed < PATIENCE, "{elapsed:?}");
    assert_eq!(sf.waiting(), 0);
    // A follower whose deadline has already passed gives up at once.
    let start = Instant::now();
    let err = sf.lookup_ip("SLOW.test", Some(Instant::now())).unwrap_err();
    assert!(err.is_timeout, "{err:?}");
    assert!(start.elapsed() < PATIENCE);
    assert!(!leader.is_finished(), "the leader keeps waiting for its answer");
    sf.inner().release();
    assert_eq!(leader.join().unwrap().unwrap(), vec![LO4], "the leader is unaffected");
    assert_eq!(sf.inner().calls(), 1);
}

/// Panics on its first lookup (after its gate opens); answers 127.0.0.1
/// afterwards.
struct PanicsOnce {
    inner: TestResolver,
}

impl Resolver for PanicsOnce {
    fn lookup_ip(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<IpAddr>, tcp::LookupError> {
        let first = self.inner.calls() == 0;
        let answer = self.inner.lookup_ip(host, deadline);
        if first {
            panic!("a buggy resolver (this panic is expected by the test)");
        }
        answer
    }

    fn lookup_port(&self, service: &str) -> Result<u16, tcp::LookupError> {
        self.inner.lookup_port(service)
    }
}

#[test]
fn singleflight_survives_a_panicking_resolver() {
    let inner = PanicsOnce { inner: TestResolver::new(&[("boom.test", &[LO4])]).gated() };
    let sf = Arc::new(SingleflightResolver::new(inner));
    let leader = {
        let sf = sf.clone();
        thread::spawn(move || sf.lookup_ip("boom.test", None))
    };
    wait_until("the leader is in the inner resolver", || sf.inner().inner.calls() == 1);
    let follower = {
        let sf = sf.clone();
        thread::spawn(move || sf.lookup_ip("boom.test", Some(Instant::now() + PATIENCE)))
    };
    wait_until("the follower waits", || sf.waiting() == 1);
    let start = Instant::now();
    sf.inner().inner.release();
    assert!(leader.join().is_err(), "the leader's panic reaches its caller");
    let err = follower.join().unwrap().unwrap_err();
    assert!(!err.is_timeout, "the follower must get an error at once, not wait for its deadline: {err:?}");
    assert!(start.elapsed() < PATIENCE);
    // The failed call is retired: the next lookup asks again and succeeds.
    assert_eq!(sf.lookup_ip("boom.test", Some(Instant::now() + PATIENCE)).unwrap(), vec![LO4]);
    assert_eq!(sf.inner().inner.calls(), 2);
}

// ----------------------------------------------------------------- caching

#[test]
fn caching_keeps_successes() {
    let inner = Arc::new(TestResolver::new(&[("a.test", &[LO4])]));
    let cache = CachingResolver::new(inner.clone(), Duration::from_secs(60));
    assert!(cache.is_empty());
    assert_eq!(cache.lookup_ip("a.test", None).unwrap(), vec![LO4]);
    assert_eq!(cache.lookup_ip("A.TEST.", None).unwrap(), vec![LO4], "same name: case and trailing dot");
    assert_eq!(inner.calls(), 1);
    assert_eq!((cache.hits(), cache.misses(), cache.len()), (1, 1, 1));
}

#[test]
fn caching_expires_after_the_ttl() {
    let ttl = ms(50);
    let inner = Arc::new(TestResolver::new(&[("a.test", &[LO4])]));
    let cache = CachingResolver::new(inner.clone(), ttl);
    cache.lookup_ip("a.test", None).unwrap();
    let cached_by = Instant::now();
    assert_eq!(inner.calls(), 1);
    // Time passing is what is under test: wait past the TTL.
    while Instant::now() < cached_by + ttl + ms(5) {
        thread::sleep(cached_by + ttl + ms(5) - Instant::now());
    }
    assert_eq!(cache.lookup_ip("a.test", None).unwrap(), vec![LO4]);
    assert_eq!(inner.calls(), 2, "an expired entry is looked up again");
    assert_eq!(cache.hits(), 0);
    assert_eq!(cache.misses(), 2);
    assert_eq!(cache.len(), 1);
}

#[test]
fn caching_never_keeps_failures() {
    let inner = Arc::new(TestResolver::new(&[]));
    let cache = CachingResolver::new(inner.clone(), Duration::from_secs(60));
    for n in 1..=3 {
        assert!(cache.lookup_ip("missing.test", None).unwrap_err().is_not_found);
        assert_eq!(inner.calls(), n);
    }
    assert_eq!((cache.hits(), cache.negative_hits()), (0, 0));
    assert!(cache.is_empty());
}

#[test]
fn caching_respects_its_capacity() {
    let table: &[(&str, &[IpAddr])] = &[("a.test", &[LO4]), ("b.test", &[LO6]), ("c.test", &[ip("127.0.0.3")])];
    let inner = Arc::new(TestResolver::new(table));
    let cache = CachingResolver::new(inner.clone(), Duration::from_secs(60)).capacity(2);
    for (n, name) in ["a.test", "b.test", "c.test"].into_iter().enumerate() {
        cache.lookup_ip(name, None).unwrap();
        assert_eq!(inner.calls(), n + 1);
        assert!(cache.len() <= 2, "{} names cached", cache.len());
    }
    // a.test was the least recently used: evicted. b and c are hits.
    cache.lookup_ip("b.test", None).unwrap();
    cache.lookup_ip("c.test", None).unwrap();
    assert_eq!((inner.calls(), cache.hits()), (3, 2));
    cache.lookup_ip("a.test", None).unwrap();
    assert_eq!(inner.calls(), 4, "the evicted name is looked up again");
    assert_eq!(cache.len(), 2);
    // That evicted b.test (used before c.test).
    cache.lookup_ip("c.test", None).unwrap();
    assert_eq!(inner.calls(), 4);
    cache.lookup_ip("b.test", None).unwrap();
    assert_eq!(inner.calls(), 5);
    assert_eq!(cache.len(), 2);
}

/// Wait until `deadline` has passed: the tests whose subject is time
/// passing (a TTL running out) wait for it this way.
fn pass(deadline: Instant) {
    while Instant::now() < deadline {
        thread::sleep(deadline - Instant::now());
    }
}

type Answer = Result<Vec<IpAddr>, LookupError>;

/// A resolver the test drives: each call reports its thread on `calls`,
/// then waits for its answer on `answers` (a closed channel answers with a
/// failure, so nothing is left blocked when the test ends).
struct Scripted {
    calls: Mutex<mpsc::Sender<ThreadId>>,
    answers: Mutex<mpsc::Receiver<Answer>>,
    count: AtomicUsize,
}

impl Scripted {
    fn new() -> (Arc<Scripted>, mpsc::Receiver<ThreadId>, mpsc::Sender<Answer>) {
        let (calls_tx, calls_rx) = mpsc::channel();
        let (answers_tx, answers_rx) = mpsc::channel();
        let r = Scripted { calls: Mutex::new(calls_tx), answers: Mutex::new(answers_rx), count: AtomicUsize::new(0) };
        (Arc::new(r), calls_rx, answers_tx)
    }

    fn count(&self) -> usize {
        self.count.load(SeqCst)
    }
}

impl Resolver for Scripted {
    fn lookup_ip(&self, host: &str, _deadline: Option<Instant>) -> Answer {
        self.count.fetch_add(1, SeqCst);
        let _ = self.calls.lock().unwrap().send(thread::current().id());
        let answer = self.answers.lock().unwrap().recv();
        answer.unwrap_or_else(|_| Err(LookupError::other(host, "the test is over")))
    }

    fn lookup_port(&self, service: &str) -> Result<u16, LookupError> {
        Err(LookupError::other(service, "unknown port"))
    }
}

#[test]
fn caching_serves_stale_answers_while_one_background_refresh_runs() {
    let ttl = ms(20);
    let (inner, calls, answers) = Scripted::new();
    let cache = Arc::new(CachingResolver::new(inner.clone(), ttl).stale_ttl(Duration::from_secs(3600)));
    answers.send(Ok(vec![LO4])).unwrap();
    assert_eq!(cache.lookup_ip("a.test", None).unwrap(), vec![LO4]);
    let cached_by = Instant::now();
    assert_eq!(calls.recv().unwrap(), thread::current().id(), "a miss is looked up by the caller");
    pass(cached_by + ttl);

    // Eight lookups at once, all after expiry: each gets the stale answer
    // at once, although the refresh they start is held by the resolver.
    let barrier = Arc::new(Barrier::new(8));
    let lookups: Vec<_> = (0..8)
        .map(|_| {
            let (cache, barrier) = (cache.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                (thread::current().id(), cache.lookup_ip("a.test", None))
            })
        })
        .collect();
    let mut callers = vec![thread::current().id()];
    for lookup in lookups {
        let (id, answer) = lookup.join().unwrap();
        assert_eq!(answer.unwrap(), vec![LO4], "the stale answer");
        callers.push(id);
    }
    assert_eq!((cache.stale_hits(), cache.hits(), cache.misses()), (8, 0, 1));
    assert_eq!(cache.refreshes(), 1, "concurrent stale hits start one refresh");
    let refresher = calls.recv_timeout(PATIENCE).expect("the refresh asks the resolver");
    assert!(!callers.contains(&refresher), "the refresh runs on a thread of its own");
    assert_eq!(inner.count(), 2);

    // The refresh answers: its answer replaces the stale one, fresh again.
    answers.send(Ok(vec![LO6])).unwrap();
    wait_until("the refreshed answer is served", || cache.lookup_ip("a.test", None).unwrap() == vec![LO6]);
    let hits = cache.hits();
    assert_eq!(cache.lookup_ip("a.test", None).unwrap(), vec![LO6]);
    assert_eq!(cache.hits(), hits + 1, "fresh again");
    assert_eq!((inner.count(), cache.refreshes(), cache.misses()), (2, 1, 1));
}

#[test]
fn caching_keeps_the_stale_answer_when_a_refresh_fails() {
    let ttl = ms(20);
    let (inner, calls, answers) = Scripted::new();
    let cache = CachingResolver::new(inner.clone(), ttl).stale_ttl(Duration::from_secs(3600));
    answers.send(Ok(vec![LO4])).unwrap();
    cache.lookup_ip("a.test", None).unwrap();
    let cached_by = Instant::now();
    calls.recv().unwrap();
    pass(cached_by + ttl);

    assert_eq!(cache.lookup_ip("a.test", None).unwrap(), vec![LO4]);
    calls.recv_timeout(PATIENCE).expect("a refresh");
    answers.send(Err(LookupError::other("a.test", "server failure"))).unwrap();
    // Once the failed refresh is over, the next stale hit starts another.
    wait_until("a second refresh starts", || {
        assert_eq!(cache.lookup_ip("a.test", None).unwrap(), vec![LO4], "still the stale answer");
        cache.refreshes() == 2
    });
    calls.recv_timeout(PATIENCE).expect("the second refresh asks the resolver");
    assert_eq!((inner.count(), cache.misses()), (3, 1));
}

#[test]
fn caching_stops_serving_stale_after_the_window() {
    let (ttl, stale) = (ms(20), ms(20));
    let (inner, calls, answers) = Scripted::new();
    let cache = CachingResolver::new(inner.clone(), ttl).stale_ttl(stale);
    answers.send(Ok(vec![LO4])).unwrap();
    cache.lookup_ip("a.test", None).unwrap();
    let cached_by = Instant::now();
    calls.recv().unwrap();
    pass(cached_by + ttl + stale);
    answers.send(Ok(vec![LO6])).unwrap();
    assert_eq!(cache.lookup_ip("a.test", None).unwrap(), vec![LO6]);
    assert_eq!(calls.recv().unwrap(), thread::current().id(), "past the window: a miss, on the caller");
    assert_eq!((cache.stale_hits(), cache.refreshes(), cache.misses()), (0, 0, 2));
}

#[test]
fn caching_remembers_not_found_for_the_negative_ttl() {
    let ttl = ms(30);
    let inner = Arc::new(TestResolver::new(&[]));
    let cache = CachingResolver::new(inner.clone(), Duration::from_secs(60)).negative_ttl(ttl);
    assert!(cache.lookup_ip("missing.test", None).unwrap_err().is_not_found);
    let cached_by = Instant::now();
    let again = cache.lookup_ip("Missing.Test.", None).unwrap_err();
    assert!(again.is_not_found, "{again:?}");
    assert_eq!(again.host, "Missing.Test.", "the error names the host asked for");
    assert_eq!(inner.calls(), 1, "remembered");
    assert_eq!((cache.negative_hits(), cache.hits(), cache.misses()), (1, 0, 1));
    pass(cached_by + ttl);
    assert!(cache.lookup_ip("missing.test", None).unwrap_err().is_not_found);
    assert_eq!(inner.calls(), 2, "forgotten after the negative TTL");
    assert_eq!(cache.negative_hits(), 1);
}

#[test]
fn caching_never_keeps_failures_other_than_not_found() {
    let (inner, calls, answers) = Scripted::new();
    let cache = CachingResolver::new(inner.clone(), Duration::from_secs(60)).negative_ttl(Duration::from_secs(60));
    for (n, failure) in
        [LookupError::other("a.test", "server failure"), LookupError::timeout("a.test")].into_iter().enumerate()
    {
        answers.send(Err(failure.clone())).unwrap();
        assert_eq!(cache.lookup_ip("a.test", None).unwrap_err(), failure);
        calls.recv().unwrap();
        assert_eq!(inner.count(), n + 1);
    }
    assert_eq!(cache.negative_hits(), 0);
    assert!(cache.is_empty());
}

// ------------------------------------------------------------- IPv6 scopes

/// The index of the loopback interface, `lo`.
fn lo_index() -> u32 {
    // SAFETY: a NUL-terminated name; if_nametoindex only reads it.
    let index = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
    assert!(index > 0, "no interface lo");
    index
}

fn scoped(ip: &str, port: u16, scope: u32) -> SocketAddr {
    SocketAddr::V6(SocketAddrV6::new(ip.parse().unwrap(), port, 0, scope))
}

#[test]
fn getaddrinfo_scope_ids_are_kept() {
    // getaddrinfo gives a zoned link-local address its scope id (no
    // network traffic: the host is numeric).
    let want = vec![scoped("fe80::1", 0, lo_index())];
    assert_eq!(SystemResolver::new().lookup_addrs("fe80::1%lo", None).unwrap(), want);
    assert_eq!(SystemResolver::new().lookup_ip("fe80::1%lo", None).unwrap(), vec![ip("fe80::1")]);
    // The resolvers that wrap others pass it on, cached or not.
    let cache = CachingResolver::new(SingleflightResolver::new(SystemResolver::new()), Duration::from_secs(60));
    assert_eq!(cache.lookup_addrs("fe80::1%lo", None).unwrap(), want);
    assert_eq!(cache.lookup_addrs("fe80::1%lo", None).unwrap(), want);
    assert_eq!(cache.hits(), 1);
    let pinned = StaticResolver::new().fallback(Arc::new(SystemResolver::new()));
    assert_eq!(pinned.lookup_addrs("fe80::1%lo", None).unwrap(), want);
}

/// A name whose only address is link-local on `lo`.
struct LinkLocal;

impl Resolver for LinkLocal {
    fn lookup_ip(&self, _host: &str, _deadline: Option<Instant>) -> Result<Vec<IpAddr>, LookupError> {
        Ok(vec![ip("fe80::1")])
    }

    fn lookup_addrs(&self, _host: &str, _deadline: Option<Instant>) -> Result<Vec<SocketAddr>, LookupError> {
        Ok(vec![scoped("fe80::1", 0, lo_index())])
    }

    fn lookup_port(&self, service: &str) -> Result<u16, LookupError> {
        Err(LookupError::other(service, "unknown port"))
    }
}

#[test]
fn resolved_scope_ids_reach_the_addresses_to_dial() {
    let addrs = resolve_tcp_addrs("tcp", "link.test:80", &LinkLocal, ResolverPolicy::default(), None).unwrap();
    assert_eq!(addrs, vec![scoped("fe80::1", 80, lo_index())]);
    // A resolver that only implements lookup_ip gives no scope.
    let r = StaticResolver::new().host("link.test", [ip("fe80::1")]);
    let addrs = resolve_tcp_addrs("tcp", "link.test:80", &r, ResolverPolicy::default(), None).unwrap();
    assert_eq!(addrs, vec![scoped("fe80::1", 80, 0)]);
}

// ------------------------------------------------------------------ system

#[test]
fn system_resolver_localhost_is_loopback() {
    let ips = SystemResolver::new().lookup_ip("localhost", Some(Instant::now() + Duration::from_secs(20))).unwrap();
    assert!(!ips.is_empty());
    assert!(ips.iter().all(|ip| ip.is_loopback()), "{ips:?}");
    // Literals never reach getaddrinfo.
    assert_eq!(SystemResolver::new().lookup_ip("127.0.0.7", None).unwrap(), vec![ip("127.0.0.7")]);
    // The default resolver and resolve_tcp_addr agree.
    let addr = resolve::resolve_tcp_addr("tcp", "localhost:80").unwrap();
    assert!(addr.ip().is_loopback() && addr.port() == 80, "{addr}");
    let all = resolve_tcp_addrs("tcp", "localhost:80", &*resolve::default_resolver(), ResolverPolicy::default(), None)
        .unwrap();
    assert!(all.iter().all(|a| a.ip().is_loopback()), "{all:?}");
}

#[test]
fn system_resolver_unknown_name() {
    let start = Instant::now();
    let err = SystemResolver::new().lookup_ip("no-such-host.invalid", Some(Instant::now() + Duration::from_secs(20)));
    let err = err.expect_err("the .invalid TLD never resolves");
    assert_eq!(err.host, "no-such-host.invalid");
    if !err.is_not_found {
        eprintln!("system_resolver_unknown_name: no usable DNS here ({err}) after {:?}", start.elapsed());
    }
    let err = SystemResolver::new().lookup_ip("", None).unwrap_err();
    assert!(err.is_not_found, "{err:?}");
    // Through the pipeline it is an Error::Lookup.
    let err =
        resolve_tcp_addrs("tcp", "no-such-host.invalid:80", &SystemResolver::new(), ResolverPolicy::default(), None)
            .unwrap_err();
    assert!(matches!(&err.err, Error::Lookup(l) if l.host == "no-such-host.invalid"), "{err:?}");
}

#[test]
fn system_resolver_deadline_already_passed() {
    // A passed deadline: a timeout at once, unless the answer was already
    // there. Never another error, never a wait.
    let start = Instant::now();
    match SystemResolver::new().lookup_ip("localhost", Some(Instant::now())) {
        Ok(ips) => assert!(ips.iter().all(|ip| ip.is_loopback()), "{ips:?}"),
        Err(err) => assert!(err.is_timeout && !err.is_not_found, "{err:?}"),
    }
    assert!(start.elapsed() < PATIENCE, "{:?}", start.elapsed());
    // The pipeline checks the deadline before asking the resolver at all.
    let err = resolve_tcp_addrs("tcp", "localhost:80", &SystemResolver::new(), ResolverPolicy::default(), Some(start))
        .unwrap_err();
    assert!(matches!(err.err, Error::Timeout), "{err:?}");
}

#[test]
fn lookup_port() {
    let sys = SystemResolver::new();
    assert_eq!(sys.lookup_port("http").unwrap(), 80);
    assert_eq!(sys.lookup_port("https").unwrap(), 443);
    assert_eq!(sys.lookup_port("ssh").unwrap(), 22);
    assert_eq!(sys.lookup_port("HTTP").unwrap(), 80, "case-insensitive");
    let err = sys.lookup_port("no-such-service-zz").unwrap_err();
    assert!(err.is_not_found && !err.is_timeout, "{err:?}");
    assert_eq!(err.host, "tcp/no-such-service-zz");
    assert_eq!(err.message, "unknown port");
    // The static resolver: its own table, then the built-in one.
    let st = StaticResolver::new().port("mysvc", 9999);
    assert_eq!(st.lookup_port("mysvc").unwrap(), 9999);
    assert_eq!(st.lookup_port("MYSVC").unwrap(), 9999);
    assert_eq!(st.lookup_port("smtp").unwrap(), 25);
    assert!(st.lookup_port("nope-zz").unwrap_err().is_not_found);
    // The wrappers ask their inner resolver.
    let sf = SingleflightResolver::new(StaticResolver::new().port("x", 1));
    assert_eq!(sf.lookup_port("x").unwrap(), 1);
    let cache = CachingResolver::new(StaticResolver::new().port("x", 2), Duration::from_secs(1));
    assert_eq!(cache.lookup_port("x").unwrap(), 2);
}
