//! Dialing: resolve, then connect, sharing the time left among addresses as
//! Go does and racing the two address families (happy eyeballs).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use iopoll::{DeadlineExceeded, PollFd, Runtime};

use crate::addr::Network;
use crate::conn::Conn;
use crate::error::{AddressError, Error, OpError};
use crate::resolve::{self, Purpose, Resolver, ResolverPolicy};
use crate::sockopts::{Control, KeepAliveConfig};
use crate::socks5;
use crate::sys;

mod future;
mod race;

use race::dial_parallel;

/// The fallback delay when none is set (RFC 8305 suggests 300 ms, as Go).
pub const DEFAULT_FALLBACK_DELAY: Duration = Duration::from_millis(300);
/// Each address gets at least this much of a shared deadline (Go's
/// `partialDeadline`), unless less is left.
const MIN_ATTEMPT: Duration = Duration::from_secs(2);

/// Options for dialing: network, time limits, local address, resolver and
/// happy eyeballs. Every setter takes and returns `Self`.
///
/// ```no_run
/// use std::time::Duration;
/// let conn = tcp::Dialer::new()
///     .timeout(Duration::from_secs(5))         // resolution + connect
///     .fallback_delay(Duration::from_millis(100))
///     .connect("localhost:8080")?;
/// # Ok::<(), tcp::OpError>(())
/// ```
#[derive(Clone, Default)]
pub struct Dialer {
    network: Network,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    local_addr: Option<SocketAddr>,
    fallback_delay: Duration,
    /// Happy eyeballs turned off: addresses are tried in order.
    single_stack: bool,
    resolver: Option<Arc<dyn Resolver>>,
    policy: ResolverPolicy,
    /// `None`: the default (probes every 15 s).
    keepalive: Option<KeepAliveConfig>,
    control: Option<Control>,
    runtime: Option<Runtime>,
    proxy: Option<Arc<Proxy>>,
}

/// A SOCKS5 proxy every dial goes through.
struct Proxy {
    address: String,
    auth: Option<socks5::Auth>,
}

impl Dialer {
    /// A dialer with Go's defaults: network `tcp`, no time limit, happy
    /// eyeballs after 300 ms, keepalive every 15 s, the default resolver.
    pub fn new() -> Dialer {
        Dialer::default()
    }

    /// Restrict the address families (`Tcp4`, `Tcp6`); `Tcp` uses both.
    pub fn network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// Bound the whole dial, name resolution included. `Duration::ZERO`
    /// means no bound.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// An absolute bound on the whole dial; with a timeout too, the earlier
    /// wins. It bounds only the dial, never the connection it returns.
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Bind the socket to this local address first; remote addresses of
    /// the other family are skipped.
    pub fn local_addr(mut self, addr: SocketAddr) -> Self {
        self.local_addr = Some(addr);
        self
    }

    /// How long the first address family gets before the other starts
    /// racing it. `Duration::ZERO` means the default, 300 ms. To turn the
    /// race off, see [`dual_stack`](Dialer::dual_stack).
    pub fn fallback_delay(mut self, delay: Duration) -> Self {
        self.fallback_delay = delay;
        self
    }

    /// Race the two address families (happy eyeballs, the default), or,
    /// with `false`, try every address in the resolver's order, one at a
    /// time, as Go does with a negative `FallbackDelay`.
    pub fn dual_stack(mut self, on: bool) -> Self {
        self.single_stack = !on;
        self
    }

    /// Resolve names with `resolver` instead of the default.
    pub fn resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Filter and order the resolved addresses.
    pub fn policy(mut self, policy: ResolverPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Keepalive period for the connection (the idle time and the probe
    /// interval both); `None` turns keepalive off.
    pub fn keepalive(mut self, period: Option<Duration>) -> Self {
        self.keepalive = Some(KeepAliveConfig::period(period));
        self
    }

    /// Keepalive as Go 1.23's `Dialer.KeepAliveConfig`: on or off, idle
    /// time, probe interval and probe count. Replaces
    /// [`keepalive`](Dialer::keepalive)'s single period (the later call
    /// wins).
    pub fn keepalive_config(mut self, c: KeepAliveConfig) -> Self {
        self.keepalive = Some(c);
        self
    }

    /// Run `f` on each socket the dial makes, after it is made and before
    /// it is bound (with [`local_addr`](Dialer::local_addr)) or connected,
    /// as Go's `Dialer.Control`: the place for socket options reseau does
    /// not wrap. Happy eyeballs may make several sockets; `f` runs on
    /// each. An error from `f` fails that attempt, and the dial reports it
    /// as [`Error::Io`] if no other address connects.
    ///
    /// ```no_run
    /// use std::os::fd::AsRawFd;
    /// let conn = tcp::Dialer::new()
    ///     .control(|fd| {
    ///         let size: libc::c_int = 1 << 20;
    ///         // SAFETY: `size` lives across the call and its size is passed with it.
    ///         let r = unsafe {
    ///             libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF,
    ///                 (&raw const size).cast(), size_of::<libc::c_int>() as libc::socklen_t)
    ///         };
    ///         if r == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
    ///     })
    ///     .connect("127.0.0.1:80")?;
    /// # Ok::<(), tcp::OpError>(())
    /// ```
    pub fn control(mut self, f: impl Fn(BorrowedFd<'_>) -> io::Result<()> + Send + Sync + 'static) -> Self {
        self.control = Some(Control::new(f));
        self
    }

    /// Wait on `rt` instead of the global runtime.
    pub fn runtime(mut self, rt: Runtime) -> Self {
        self.runtime = Some(rt);
        self
    }

    /// Dial every address through the SOCKS5 proxy at `proxy`
    /// (`"host:port"`), authenticating with `auth` if given (RFC 1929).
    ///
    /// The proxy itself is dialed with this dialer's other options. Target
    /// names go to the proxy unresolved, and the proxy resolves them; IP
    /// literals are sent as addresses. The timeout and deadline cover
    /// dialing the proxy and the SOCKS5 exchange. A bad target address is
    /// [`Error::Address`] before anything is dialed; a failure the proxy
    /// reports is [`Error::Io`] carrying the [`socks5::Error`] (reach it
    /// with `get_ref()` and `downcast_ref`).
    ///
    /// ```no_run
    /// use tcp::socks5::Auth;
    /// let dialer = tcp::Dialer::new().socks5_proxy("127.0.0.1:1080", Some(Auth::new("alice", "s3cret")));
    /// let conn = dialer.connect("example.com:80")?; // example.com is resolved by the proxy
    /// # Ok::<(), tcp::OpError>(())
    /// ```
    pub fn socks5_proxy(mut self, proxy: &str, auth: Option<socks5::Auth>) -> Self {
        self.proxy = Some(Arc::new(Proxy { address: proxy.to_string(), auth }));
        self
    }

    /// The instant a dial starting at `start` must be done by: the earlier
    /// of `start + timeout` and the deadline.
    pub fn deadline_from(&self, start: Instant) -> Option<Instant> {
        let from_timeout = self.timeout.and_then(|t| start.checked_add(t));
        match (from_timeout, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The network this dialer uses.
    pub fn get_network(&self) -> Network {
        self.network
    }

    /// Resolve `address` (`"host:port"`) and connect to it.
    pub fn connect(&self, address: &str) -> Result<Conn, OpError> {
        let deadline = self.deadline_from(Instant::now());
        if let Some(proxy) = &self.proxy {
            return self.connect_via(proxy, address, deadline);
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(self.error_named(address, Error::Timeout));
        }
        // The default resolver honours deadlines; a custom one is raced
        // against the deadline, so the dial ends on time whatever it does.
        let resolver: Arc<dyn Resolver> = match &self.resolver {
            Some(custom) if deadline.is_some() => Arc::new(resolve::Bounded::new(custom.clone(), deadline)),
            Some(custom) => custom.clone(),
            None => resolve::default_resolver(),
        };
        let addrs = resolve::resolve(Purpose::Dial, self.network, address, &*resolver, self.policy, deadline)
            .map_err(|e| self.error(None, e))?;
        // An answer can come just as the time runs out: dial nothing then.
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(self.error_named(address, Error::Timeout));
        }
        self.dial(addrs, deadline)
    }

    /// Connect to `addr`; no resolution, no race.
    pub fn connect_addr(&self, addr: SocketAddr) -> Result<Conn, OpError> {
        let deadline = self.deadline_from(Instant::now());
        if let Some(proxy) = &self.proxy {
            return self.connect_via(proxy, &addr.to_string(), deadline);
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(self.error(Some(addr), Error::Timeout));
        }
        if !self.network.allows(&addr.ip()) {
            let e = AddressError::new("no suitable address found", addr.to_string());
            return Err(self.error(Some(addr), Error::Address(e)));
        }
        self.dial(vec![addr], deadline)
    }

    /// Through the proxy: check what can be checked, dial the proxy, then
    /// the SOCKS5 exchange, all before `deadline`.
    fn connect_via(&self, proxy: &Proxy, target: &str, deadline: Option<Instant>) -> Result<Conn, OpError> {
        let fail = |err| OpError {
            op: "dial",
            net: self.network.as_str().to_string(),
            local_addr: self.local_addr,
            addr: Some(target.to_string()),
            err,
        };
        let checked = socks5::Target::parse(target).map_err(|e| fail(Error::Address(e)))?;
        if let Some(auth) = &proxy.auth {
            auth.check().map_err(|e| fail(socks5_error(e)))?;
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(fail(Error::Timeout));
        }
        let direct = Dialer { proxy: None, timeout: None, deadline, ..self.clone() };
        let conn = direct.connect(&proxy.address)?;
        let exchange = conn
            .set_deadline(deadline)
            .map_err(socks5::Error::Io)
            .and_then(|()| socks5::handshake_checked(&conn, &checked, proxy.auth.as_ref()))
            .and_then(|_| conn.set_deadline(None).map_err(socks5::Error::Io));
        // On failure `conn` is dropped, closing the proxy connection.
        exchange.map(|()| conn).map_err(|e| fail(socks5_error(e)))
    }

    fn error(&self, addr: Option<SocketAddr>, err: Error) -> OpError {
        OpError {
            op: "dial",
            net: self.network.as_str().to_string(),
            local_addr: self.local_addr,
            addr: addr.map(|a| a.to_string()),
            err,
        }
    }

    /// The error of a dial that failed before an address was picked, named
    /// by the address it was given, as Go names it
    /// (`dial tcp 127.0.0.1:9: i/o timeout`).
    fn error_named(&self, address: &str, err: Error) -> OpError {
        OpError { addr: (!address.is_empty()).then(|| address.to_string()), ..self.error(None, err) }
    }

    fn dial(&self, addrs: Vec<SocketAddr>, deadline: Option<Instant>) -> Result<Conn, OpError> {
        let prepared = self.prepare(addrs, deadline)?;
        let plan = prepared.parts.plan();
        let result = if prepared.fallbacks.is_empty() {
            dial_serial(&prepared.primaries, &plan)
        } else {
            dial_parallel(prepared.primaries, prepared.fallbacks, &plan, prepared.delay)
        };
        result.map_err(|(addr, err)| self.error(Some(addr), err))
    }

    /// What dialing the resolved `addrs` takes, decided once for the
    /// blocking and the async dial alike: the addresses split into the
    /// race's two families, the fallback delay, and the plan's parts.
    fn prepare(&self, mut addrs: Vec<SocketAddr>, deadline: Option<Instant>) -> Result<Prepared, OpError> {
        if let Some(local) = self.local_addr {
            addrs.retain(|a| a.is_ipv4() == local.is_ipv4());
            if addrs.is_empty() {
                let e = AddressError::new("no suitable address found", local.to_string());
                return Err(self.error(None, Error::Address(e)));
            }
        }
        let local = self.local_addr;
        let control = self.control.clone();
        let socket = move |addr: &SocketAddr| {
            let fd = sys::stream_socket(addr)?;
            if let Some(control) = &control {
                control.run(fd.as_fd())?;
            }
            if let Some(local) = local {
                sys::bind(fd.as_raw_fd(), &local)?;
            }
            Ok(fd)
        };
        let parts = PlanParts {
            local,
            deadline,
            rt: self.runtime.clone().unwrap_or_else(Runtime::global),
            keepalive: self.keepalive.unwrap_or(KeepAliveConfig::DEFAULT),
            socket: Arc::new(socket),
        };
        let first_v4 = addrs[0].is_ipv4();
        let (primaries, fallbacks): (Vec<_>, Vec<_>) = if self.network == Network::Tcp && !self.single_stack {
            addrs.into_iter().partition(|a| a.is_ipv4() == first_v4)
        } else {
            (addrs, Vec::new())
        };
        let delay = if self.fallback_delay.is_zero() { DEFAULT_FALLBACK_DELAY } else { self.fallback_delay };
        Ok(Prepared { primaries, fallbacks, delay, parts })
    }
}

impl fmt::Debug for Dialer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dialer")
            .field("network", &self.network)
            .field("timeout", &self.timeout)
            .field("deadline", &self.deadline)
            .field("local_addr", &self.local_addr)
            .field("fallback_delay", &self.fallback_delay)
            .field("dual_stack", &!self.single_stack)
            .field("custom_resolver", &self.resolver.is_some())
            .field("policy", &self.policy)
            .field("keepalive", &self.keepalive.unwrap_or(KeepAliveConfig::DEFAULT))
            .field("control", &self.control.is_some())
            .field("socks5_proxy", &self.proxy.as_ref().map(|p| &p.address))
            .finish()
    }
}

/// A SOCKS5 failure as a dial error: a passed deadline is a timeout, other
/// I/O errors stay themselves, and the rest travel inside an `io::Error`.
fn socks5_error(e: socks5::Error) -> Error {
    match e {
        socks5::Error::Io(io) if DeadlineExceeded::is(&io) => Error::Timeout,
        socks5::Error::Io(io) => Error::Io(io),
        other => Error::Io(io::Error::new(other.kind(), other)),
    }
}

/// Makes the socket for one attempt (and binds it, if asked to).
type SocketFn<'a> = &'a (dyn Fn(&SocketAddr) -> io::Result<OwnedFd> + Sync);

/// Makes the socket for one attempt, owned (an async dial keeps it).
type MakeSocket = dyn Fn(&SocketAddr) -> io::Result<OwnedFd> + Send + Sync;

/// A dial's resolved addresses, split for the race, and its plan's parts.
struct Prepared {
    /// The family of the first address, tried first (all of them when
    /// there is no race).
    primaries: Vec<SocketAddr>,
    /// The other family, racing the primaries after `delay`; empty: no race.
    fallbacks: Vec<SocketAddr>,
    delay: Duration,
    parts: PlanParts,
}

/// A [`Plan`]'s contents, owned, so that an async dial can keep them.
struct PlanParts {
    local: Option<SocketAddr>,
    deadline: Option<Instant>,
    rt: Runtime,
    keepalive: KeepAliveConfig,
    socket: Arc<MakeSocket>,
}

impl PlanParts {
    fn plan(&self) -> Plan<'_> {
        Plan {
            local: self.local,
            deadline: self.deadline,
            rt: self.rt.clone(),
            keepalive: self.keepalive,
            socket: &*self.socket,
        }
    }
}

/// Everything one dial attempt needs.
struct Plan<'a> {
    local: Option<SocketAddr>,
    deadline: Option<Instant>,
    rt: Runtime,
    keepalive: KeepAliveConfig,
    socket: SocketFn<'a>,
}

impl Plan<'_> {
    /// Whether the kernel picks the local port, so that a connection to
    /// itself or a spurious `EADDRNOTAVAIL` is worth another try (Go's
    /// rule: never with a fixed local port).
    fn ephemeral(&self) -> bool {
        self.local.is_none_or(|l| l.port() == 0)
    }
}

type Outcome = Result<Conn, (SocketAddr, Error)>;

/// Sockets per address: a connection to itself or a spurious
/// `EADDRNOTAVAIL` on an ephemeral dial is retried, up to this many tries
/// in all (as Go and Reseau.jl do).
const TRIES: u32 = 3;

/// Try each address in turn, each with its share of the time left. The
/// first success wins; otherwise the first error is reported.
fn dial_serial(addrs: &[SocketAddr], plan: &Plan) -> Outcome {
    let mut first_err = None;
    for (i, &addr) in addrs.iter().enumerate() {
        let attempt_deadline = match partial_deadline(Instant::now(), plan.deadline, addrs.len() - i) {
            Ok(d) => d,
            Err(e) => return Err(first_err.unwrap_or((addr, e))),
        };
        match connect_one(addr, plan, attempt_deadline) {
            Ok(conn) => return Ok(conn),
            Err(e) => {
                first_err.get_or_insert((addr, e));
            }
        }
    }
    Err(first_err.expect("dial_serial needs at least one address"))
}

/// Go's `partialDeadline`: the time left split evenly among the addresses
/// left, but at least 2 s each while that much remains.
fn partial_deadline(now: Instant, deadline: Option<Instant>, addrs_left: usize) -> Result<Option<Instant>, Error> {
    let Some(deadline) = deadline else { return Ok(None) };
    let remaining = deadline.saturating_duration_since(now);
    if remaining.is_zero() {
        return Err(Error::Timeout);
    }
    let mut share = remaining / addrs_left.max(1) as u32;
    if share < MIN_ATTEMPT {
        share = remaining.min(MIN_ATTEMPT);
    }
    Ok(Some(now + share))
}

/// One address, waiting on the socket alone (no race).
fn connect_one(addr: SocketAddr, plan: &Plan, deadline: Option<Instant>) -> Result<Conn, Error> {
    let mut tries = 0;
    loop {
        tries += 1;
        let fd = match begin(addr, plan) {
            Ok(Begun::Connected(fd)) => fd,
            Ok(Begun::InProgress(fd)) => {
                wait_connected(&fd, plan, deadline)?;
                fd
            }
            Err(e) if tries < TRIES && plan.ephemeral() && is_addr_not_avail(&e) => continue,
            Err(e) => return Err(e),
        };
        match established(fd, addr, plan)? {
            Some(conn) => return Ok(conn),
            None if tries < TRIES => continue,
            None => return Err(self_connected()),
        }
    }
}

/// How a nonblocking connect started.
enum Begun {
    Connected(OwnedFd),
    InProgress(OwnedFd),
}

/// A socket for `addr`, bound if the plan says so, with its connect begun.
fn begin(addr: SocketAddr, plan: &Plan) -> Result<Begun, Error> {
    let fd = (plan.socket)(&addr).map_err(Error::Io)?;
    match sys::connect(fd.as_raw_fd(), &addr) {
        Ok(()) => Ok(Begun::Connected(fd)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EINTR)) => Ok(Begun::InProgress(fd)),
        Err(e) => Err(Error::Io(e)),
    }
}

fn is_addr_not_avail(e: &Error) -> bool {
    matches!(e, Error::Io(io) if io.raw_os_error() == Some(libc::EADDRNOTAVAIL))
}

/// What a dial that only ever reached itself reports.
fn self_connected() -> Error {
    Error::Io(io::Error::from_raw_os_error(libc::ECONNREFUSED))
}

/// The connection on a connected socket, or `None` if the socket is
/// connected to itself (possible on loopback when no one listens on the
/// port the kernel happened to pick): dropped, to be retried, as Go does.
fn established(fd: OwnedFd, addr: SocketAddr, plan: &Plan) -> Result<Option<Conn>, Error> {
    // The local end as the kernel has it; the peer as dialed, unless that
    // was a wildcard (dialing 0.0.0.0 or [::] reaches a loopback address,
    // which is what Go reports).
    let raw = fd.as_raw_fd();
    let local = sys::local_addr(raw).ok();
    let remote = if addr.ip().is_unspecified() { sys::peer_addr(raw).unwrap_or(addr) } else { addr };
    if plan.ephemeral() && local.is_some_and(|l| same_endpoint(l, remote)) {
        return Ok(None);
    }
    Conn::established(fd, &plan.rt, local, Some(remote), plan.keepalive).map(Some).map_err(Error::Io)
}

/// Address and port equal (the scope id and flow label do not matter).
fn same_endpoint(a: SocketAddr, b: SocketAddr) -> bool {
    a.ip() == b.ip() && a.port() == b.port()
}

/// Wait for a connect in progress: writable, then `SO_ERROR`. The
/// deadline is the wait's write deadline.
fn wait_connected(fd: &OwnedFd, plan: &Plan, deadline: Option<Instant>) -> Result<(), Error> {
    let pd = PollFd::new(&plan.rt, fd.as_raw_fd()).map_err(Error::Io)?;
    pd.set_write_deadline(deadline);
    loop {
        match pd.wait_writable() {
            Ok(()) => {}
            Err(e) if DeadlineExceeded::is(&e) => return Err(Error::Timeout),
            Err(e) => return Err(Error::Io(e)),
        }
        match sys::take_error(fd.as_raw_fd()).map_err(Error::Io)? {
            None => return Ok(()),
            Some(e) if matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EALREADY | libc::EINTR)) => {}
            Some(e) => return Err(Error::Io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    /// A loopback port nobody listens on (free when picked).
    fn unused_port() -> SocketAddr {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
    }

    fn plan(socket: SocketFn<'_>) -> Plan<'_> {
        let deadline = Some(Instant::now() + Duration::from_secs(10));
        Plan { local: None, deadline, rt: Runtime::global(), keepalive: KeepAliveConfig::period(None), socket }
    }

    /// A socket bound to `at` with `SO_REUSEADDR`, as the port-reuse
    /// tricks below need.
    fn bound_socket(at: &SocketAddr) -> io::Result<OwnedFd> {
        let fd = sys::stream_socket(at)?;
        sys::set_reuseaddr(fd.as_raw_fd(), true)?;
        sys::bind(fd.as_raw_fd(), at)?;
        Ok(fd)
    }

    /// The port-reuse trick: a socket bound to the very address it then
    /// connects to, with nobody listening there, connects to itself (TCP's
    /// simultaneous open). Only the first socket is made that way; the
    /// retry's socket is ephemeral and refused.
    fn self_connect_first(
        target: SocketAddr,
        calls: &AtomicUsize,
    ) -> impl Fn(&SocketAddr) -> io::Result<OwnedFd> + Sync + '_ {
        move |addr: &SocketAddr| {
            if calls.fetch_add(1, SeqCst) == 0 && *addr == target {
                bound_socket(addr)
            } else {
                sys::stream_socket(addr)
            }
        }
    }

    fn is_refused(e: &Error) -> bool {
        matches!(e, Error::Io(io) if io.raw_os_error() == Some(libc::ECONNREFUSED))
    }

    #[test]
    fn a_connection_to_itself_is_dropped_and_retried() {
        let target = unused_port();
        let calls = AtomicUsize::new(0);
        let socket = self_connect_first(target, &calls);
        let plan = plan(&socket);
        let err = connect_one(target, &plan, plan.deadline).unwrap_err();
        assert!(is_refused(&err), "{err:?}");
        assert_eq!(calls.load(SeqCst), 2, "one self-connected socket, one retry");
    }

    #[test]
    fn a_connection_to_itself_is_retried_in_a_race_too() {
        let target = unused_port();
        let other = unused_port();
        let calls = AtomicUsize::new(0);
        let socket = self_connect_first(target, &calls);
        let plan = plan(&socket);
        let (addr, err) = dial_parallel(vec![target], vec![other], &plan, Duration::from_secs(5)).unwrap_err();
        assert!(is_refused(&err), "{err:?}");
        assert_eq!(addr, target, "the primary's error is reported");
        assert_eq!(calls.load(SeqCst), 3, "the primary twice (itself, then refused), the fallback once");
    }

    #[test]
    fn a_connection_to_itself_is_kept_with_a_fixed_local_port() {
        // As Go: with a fixed local port there is no retry to make.
        let target = unused_port();
        let socket = |addr: &SocketAddr| bound_socket(addr);
        let plan = Plan { local: Some(target), ..plan(&socket) };
        let conn = connect_one(target, &plan, plan.deadline).unwrap();
        assert_eq!(conn.local_addr().unwrap(), conn.remote_addr().unwrap());
    }

    #[test]
    fn eaddrnotavail_on_an_ephemeral_dial_is_retried() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        // The port-reuse trick: a socket on port P connected to the target
        // makes a second socket on P connecting there fail with
        // EADDRNOTAVAIL (the address pair is taken).
        let first = bound_socket(&"127.0.0.1:0".parse().unwrap()).unwrap();
        let taken = sys::local_addr(first.as_raw_fd()).unwrap();
        match sys::connect(first.as_raw_fd(), &target) {
            Ok(()) => {}
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EINPROGRESS), "{e}"),
        }
        let calls = AtomicUsize::new(0);
        let socket = |addr: &SocketAddr| {
            if calls.fetch_add(1, SeqCst) == 0 { bound_socket(&taken) } else { sys::stream_socket(addr) }
        };
        let plan = plan(&socket);
        let conn = connect_one(target, &plan, plan.deadline).unwrap();
        assert_eq!(calls.load(SeqCst), 2, "one EADDRNOTAVAIL, one retry");
        assert_ne!(conn.local_addr().unwrap(), taken);
        // Without the retry the same socket factory fails.
        calls.store(0, SeqCst);
        let plan = Plan { local: Some(taken), ..plan };
        let err = connect_one(target, &plan, plan.deadline).unwrap_err();
        assert!(matches!(&err, Error::Io(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL)), "{err:?}");
        assert_eq!(calls.load(SeqCst), 1);
    }

    #[test]
    fn partial_deadline_like_go() {
        let now = Instant::now();
        let s = Duration::from_secs;
        let share = |d: Duration, n| partial_deadline(now, Some(now + d), n).unwrap().unwrap() - now;
        assert_eq!(share(s(12), 1), s(12));
        assert_eq!(share(s(12), 2), s(6));
        assert_eq!(share(s(12), 3), s(4));
        assert_eq!(share(s(12), 999), s(2));
        assert_eq!(share(Duration::from_millis(1900), 999), Duration::from_millis(1900));
        assert_eq!(partial_deadline(now, None, 3).unwrap(), None);
        assert!(matches!(partial_deadline(now, Some(now), 1), Err(Error::Timeout)));
    }
}
