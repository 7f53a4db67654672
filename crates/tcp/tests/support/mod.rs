//! Fixtures shared by the dial and resolve tests: loopback only.
//!
//! - [`BlackHole`]: a loopback listener whose accept queue is full, so the
//!   kernel drops further SYNs and a connect to it hangs.
//! - [`Reserved`]: a loopback port bound but not listening, so a connect to
//!   it is refused at once and nobody else can listen there meanwhile.
//! - [`Gate`] and [`TestResolver`]: a resolver that counts its calls and can
//!   hold them until released.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashMap;
use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tcp::LookupError;
use tcp::resolve::Resolver;

pub const LO4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const LO6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// A generous bound for things that should take milliseconds, so the tests
/// pass on a loaded CI machine.
pub const SLACK: Duration = Duration::from_secs(5);

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Whether `[::1]` can be bound here. Tests that need it print that they
/// skipped when it cannot, unless `RESEAU_REQUIRE_IPV6` is set (CI sets
/// it): then a missing IPv6 loopback fails them instead of passing them
/// without testing anything.
pub fn ipv6_loopback(test: &str) -> bool {
    let ok = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok();
    if !ok {
        assert!(
            std::env::var_os("RESEAU_REQUIRE_IPV6").is_none(),
            "{test}: no IPv6 loopback here, and RESEAU_REQUIRE_IPV6 is set"
        );
        eprintln!("{test}: skipped, no IPv6 loopback on this machine");
    }
    ok
}

/// Call `f` until it returns `Some` (it returns `None` when a port it wanted
/// was taken), at most 50 times.
pub fn retry<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..50 {
        if let Some(t) = f() {
            return t;
        }
    }
    panic!("{what}: no free port after 50 tries");
}

/// A loopback listener that never accepts, with its accept queue full:
/// the kernel drops every further SYN, so a connect to it hangs until the
/// connecting side gives up.
pub struct BlackHole {
    pub addr: SocketAddr,
    listener: tcp::Listener,
    _queued: Vec<TcpStream>,
}

impl BlackHole {
    /// A black hole on `addr` (port 0: any), or `None` if `addr` cannot be
    /// bound. Checked: a connect to it does not complete within 200 ms.
    pub fn bind(addr: SocketAddr) -> Option<BlackHole> {
        let net = if addr.is_ipv4() { tcp::Network::Tcp4 } else { tcp::Network::Tcp6 };
        let listener = tcp::ListenConfig::new().network(net).backlog(0).bind(addr).ok()?;
        let addr = listener.local_addr().unwrap();
        // Backlog 0 holds one connection on Linux; a few more elsewhere.
        // Connect until one hangs; that hanging connect is the check.
        let mut queued = Vec::new();
        loop {
            assert!(queued.len() < 64, "the accept queue of {addr} never filled");
            match TcpStream::connect_timeout(&addr, ms(200)) {
                Ok(s) => queued.push(s),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => break,
                Err(e) => panic!("filling the accept queue of {addr}: {e}"),
            }
        }
        Some(BlackHole { addr, listener, _queued: queued })
    }

    /// Accept (and close) one queued connection: the queue then has room
    /// for the next SYN, so a connect in progress completes when its SYN
    /// is retransmitted.
    pub fn release_one(&self) {
        self.listener.set_deadline(Some(Instant::now() + SLACK)).unwrap();
        drop(self.listener.accept().expect("a queued connection"));
    }
}

/// A loopback port that is bound but not listening: connects to it are
/// refused, and no one else can listen on it while this lives (no
/// `SO_REUSEADDR`).
pub struct Reserved {
    pub addr: SocketAddr,
    _fd: OwnedFd,
}

impl Reserved {
    /// Reserve `addr` (port 0: any), or `None` if it is taken.
    pub fn bind(addr: SocketAddr) -> Option<Reserved> {
        let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
        // SAFETY: plain syscall with constant arguments.
        let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM, 0) };
        assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
        // SAFETY: `fd` was just returned by socket() and is owned by no one else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // Close-on-exec after the fact (macOS has no SOCK_CLOEXEC), so the
        // peers tests spawn do not hold the port.
        // SAFETY: fcntl on a descriptor we own, with a constant flag.
        assert_eq!(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) }, 0);
        let mut storage = to_storage(&addr);
        let len = storage_len(&addr);
        // SAFETY: `storage` holds a sockaddr of `addr`'s family, valid for `len` bytes.
        let rc = unsafe { libc::bind(fd.as_raw_fd(), (&raw const storage).cast(), len) };
        if rc != 0 {
            return None;
        }
        let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `storage` is writable for `len` bytes.
        let rc = unsafe { libc::getsockname(fd.as_raw_fd(), (&raw mut storage).cast(), &mut len) };
        assert_eq!(rc, 0, "getsockname: {}", io::Error::last_os_error());
        let port = from_storage_port(&storage, &addr);
        Some(Reserved { addr: SocketAddr::new(addr.ip(), port), _fd: fd })
    }
}

fn storage_len(addr: &SocketAddr) -> libc::socklen_t {
    (match addr {
        SocketAddr::V4(_) => mem::size_of::<libc::sockaddr_in>(),
        SocketAddr::V6(_) => mem::size_of::<libc::sockaddr_in6>(),
    }) as libc::socklen_t
}

fn to_storage(addr: &SocketAddr) -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let sin = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) };
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            let sin6 = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr { s6_addr: a.ip().octets() };
            sin6.sin6_scope_id = a.scope_id();
        }
    }
    storage
}

fn from_storage_port(storage: &libc::sockaddr_storage, addr: &SocketAddr) -> u16 {
    match addr {
        SocketAddr::V4(_) => {
            // SAFETY: the kernel filled `storage` with a sockaddr_in for this AF_INET socket.
            let sin = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            u16::from_be(sin.sin_port)
        }
        SocketAddr::V6(_) => {
            // SAFETY: the kernel filled `storage` with a sockaddr_in6 for this AF_INET6 socket.
            let sin6 = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            u16::from_be(sin6.sin6_port)
        }
    }
}

pub fn v4(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

pub fn v6(ip: Ipv6Addr, port: u16) -> SocketAddr {
    SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0))
}

/// A latch: `wait` blocks until `open` (or the safety bound passes, which
/// fails the test instead of hanging it).
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    pub fn open(&self) {
        *self.open.lock() = true;
        self.cv.notify_all();
    }

    pub fn wait(&self) {
        let until = Instant::now() + Duration::from_secs(30);
        let mut open = self.open.lock();
        while !*open {
            assert!(!self.cv.wait_until(&mut open, until).timed_out() || *open, "gate never opened");
        }
    }
}

/// A resolver with a fixed table that counts its calls and, if it has a
/// gate, holds every call until the gate opens. Unknown names fail with
/// "no such host".
pub struct TestResolver {
    pub table: HashMap<String, Vec<IpAddr>>,
    pub calls: AtomicUsize,
    pub gate: Option<Gate>,
}

impl TestResolver {
    pub fn new(table: &[(&str, &[IpAddr])]) -> TestResolver {
        TestResolver {
            table: table.iter().map(|(h, ips)| (h.to_string(), ips.to_vec())).collect(),
            calls: AtomicUsize::new(0),
            gate: None,
        }
    }

    pub fn gated(mut self) -> TestResolver {
        self.gate = Some(Gate::default());
        self
    }

    pub fn calls(&self) -> usize {
        self.calls.load(SeqCst)
    }

    pub fn release(&self) {
        self.gate.as_ref().expect("a gated resolver").open();
    }
}

impl Resolver for TestResolver {
    fn lookup_ip(&self, host: &str, _deadline: Option<Instant>) -> Result<Vec<IpAddr>, LookupError> {
        self.calls.fetch_add(1, SeqCst);
        if let Some(gate) = &self.gate {
            gate.wait();
        }
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        self.table.get(&key).cloned().ok_or_else(|| LookupError::not_found(host))
    }

    fn lookup_port(&self, service: &str) -> Result<u16, LookupError> {
        Err(LookupError::other(format!("tcp/{service}"), "unknown port"))
    }
}

/// Poll `cond` (yielding) until it holds; fail the test after 10 s.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting until {what}");
        std::thread::yield_now();
    }
}
