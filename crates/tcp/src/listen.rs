//! Listening on an address string.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use iopoll::Runtime;

use crate::addr::Network;
use crate::error::{Error, OpError};
use crate::listener::{ListenOptions, Listener};
use crate::resolve::{self, Purpose, Resolver, ResolverPolicy};

/// Options for listening. Every setter takes and returns `Self`.
///
/// ```
/// let l = tcp::ListenConfig::new().backlog(1024).listen("127.0.0.1:0")?;
/// assert_ne!(l.local_addr()?.port(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct ListenConfig {
    /// `None`: 128.
    backlog: Option<u32>,
    /// `None`: on.
    reuseaddr: Option<bool>,
    network: Network,
    resolver: Option<Arc<dyn Resolver>>,
    policy: ResolverPolicy,
    runtime: Option<Runtime>,
}

impl ListenConfig {
    /// Backlog 128, `SO_REUSEADDR` on, network `tcp`, the default resolver.
    pub fn new() -> ListenConfig {
        ListenConfig::default()
    }

    /// The accept queue length.
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
            backlog: self.backlog.unwrap_or(128),
            reuseaddr: self.reuseaddr.unwrap_or(true),
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
            .field("network", &self.network)
            .field("custom_resolver", &self.resolver.is_some())
            .field("policy", &self.policy)
            .finish()
    }
}
