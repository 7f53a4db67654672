//! `ListenConfig`: how to listen (backlog, address and port reuse, the
//! control hook, keepalive of accepted connections, network, resolver),
//! on an address string or a `SocketAddr`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use iopoll::Runtime;

use crate::addr::Network;
use crate::error::{Error, OpError};
use crate::listener::{ListenOptions, Listener};
use crate::resolve::{self, Purpose, Resolver, ResolverPolicy};
use crate::sockopts::{Control, KeepAliveConfig};
use crate::sys;

/// Options for listening. Every setter takes and returns `Self`.
///
/// ```
/// let l = tcp::ListenConfig::new().backlog(1024).listen("127.0.0.1:0")?;
/// assert_ne!(l.local_addr()?.port(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct ListenConfig {
    /// `None`: the system's maximum (`somaxconn`).
    backlog: Option<u32>,
    /// `None`: on.
    reuseaddr: Option<bool>,
    reuse_port: bool,
    /// `None`: Go's default, probes every 15 s.
    keepalive: Option<KeepAliveConfig>,
    control: Option<Control>,
    network: Network,
    resolver: Option<Arc<dyn Resolver>>,
    policy: ResolverPolicy,
    runtime: Option<Runtime>,
}

impl ListenConfig {
    /// The system's maximum backlog (`somaxconn`, as Go reads it),
    /// `SO_REUSEADDR` on, no `SO_REUSEPORT`, accepted connections with
    /// keepalive every 15 s, network `tcp`, the default resolver.
    pub fn new() -> ListenConfig {
        ListenConfig::default()
    }

    /// The accept queue length (the system lowers it to its maximum).
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = Some(backlog);
        self
    }

    /// Set `SO_REUSEADDR` (on by default), so a restarted server can bind
    /// while old connections linger in `TIME_WAIT`.
    pub fn reuseaddr(mut self, on: bool) -> Self {
        self.reuseaddr = Some(on);
        self
    }

    /// Set `SO_REUSEPORT` (off by default): several listeners, in this
    /// process or others, may then bind the same address and port, and the
    /// kernel spreads incoming connections among them (one listener per
    /// worker, or an old and a new process during a restart). Every one of
    /// them must set it. On FreeBSD this is `SO_REUSEPORT_LB`.
    ///
    /// ```
    /// let config = tcp::ListenConfig::new().reuse_port(true);
    /// let a = config.listen("127.0.0.1:0")?;
    /// let b = config.bind(a.local_addr()?)?; // the same port
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// Run `f` on each listening socket after it is made (and reseau's
    /// options are set) and before it is bound, as Go's
    /// `ListenConfig.Control`: the place for socket options reseau does
    /// not wrap. An error from `f` ends the listen with it, as the
    /// [`OpError`]'s [`Error::Io`].
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let l = tcp::ListenConfig::new()
    ///     .control(|fd| {
    ///         let size: libc::c_int = 1 << 20;
    ///         // SAFETY: `size` lives across the call and its size is passed with it.
    ///         let r = unsafe {
    ///             libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF,
    ///                 (&raw const size).cast(), size_of::<libc::c_int>() as libc::socklen_t)
    ///         };
    ///         if r == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
    ///     })
    ///     .listen("127.0.0.1:0")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn control(mut self, f: impl Fn(BorrowedFd<'_>) -> io::Result<()> + Send + Sync + 'static) -> Self {
        self.control = Some(Control::new(f));
        self
    }

    /// Keepalive for accepted connections, as Go 1.23's
    /// `ListenConfig.KeepAliveConfig` (the default: probes every 15 s).
    pub fn keepalive_config(mut self, c: KeepAliveConfig) -> Self {
        self.keepalive = Some(c);
        self
    }

    /// `Tcp4` or `Tcp6` for one family; `Tcp` listens dual-stack where the
    /// address allows it.
    pub fn network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// Resolve host names with `resolver` instead of the default.
    pub fn resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Filter and order the resolved addresses.
    pub fn policy(mut self, policy: ResolverPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Accept on `rt` instead of the global runtime.
    pub fn runtime(mut self, rt: Runtime) -> Self {
        self.runtime = Some(rt);
        self
    }

    fn options(&self) -> ListenOptions {
        ListenOptions {
            backlog: self.backlog.unwrap_or_else(sys::max_backlog),
            reuseaddr: self.reuseaddr.unwrap_or(true),
            reuse_port: self.reuse_port,
            keepalive: self.keepalive.unwrap_or(KeepAliveConfig::DEFAULT),
            control: self.control.clone(),
            v6only: match self.network {
                Network::Tcp => Some(false),
                Network::Tcp4 => None,
                Network::Tcp6 => Some(true),
            },
        }
    }

    fn error(&self, addr: Option<String>, err: Error) -> OpError {
        OpError::new("listen", self.network.as_str(), addr, err)
    }

    /// Listen on `address` (`"host:port"`): an empty host means every
    /// interface (dual-stack for `tcp`), port 0 a free port. The resolved
    /// addresses are tried in order and the first that binds is used.
    pub fn listen(&self, address: &str) -> Result<Listener, OpError> {
        let resolver = self.resolver.clone().unwrap_or_else(resolve::default_resolver);
        let addrs = resolve::resolve(Purpose::Listen, self.network, address, &*resolver, self.policy, None)
            .map_err(|e| self.error(None, e))?;
        let rt = self.runtime.clone().unwrap_or_else(Runtime::global);
        let mut first_err = None;
        for addr in &addrs {
            match Listener::open(*addr, self.options(), &rt) {
                Ok(l) => return Ok(l),
                Err(e) => {
                    first_err.get_or_insert((*addr, e));
                }
            }
        }
        let (addr, err) = first_err.expect("resolve returns at least one address");
        Err(self.error(Some(addr.to_string()), Error::Io(err)))
    }

    /// Listen on `addr` with these options.
    pub fn bind(&self, addr: SocketAddr) -> Result<Listener, OpError> {
        if !self.network.allows(&addr.ip()) {
            let e = crate::AddressError::new("no suitable address found", addr.to_string());
            return Err(self.error(Some(addr.to_string()), Error::Address(e)));
        }
        let rt = self.runtime.clone().unwrap_or_else(Runtime::global);
        Listener::open(addr, self.options(), &rt).map_err(|e| self.error(Some(addr.to_string()), Error::Io(e)))
    }
}

impl fmt::Debug for ListenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenConfig")
            .field("backlog", &self.options().backlog)
            .field("reuseaddr", &self.options().reuseaddr)
            .field("reuse_port", &self.reuse_port)
            .field("keepalive", &self.options().keepalive)
            .field("control", &self.control.is_some())
            .field("network", &self.network)
            .field("custom_resolver", &self.resolver.is_some())
            .field("policy", &self.policy)
            .finish()
    }
}
