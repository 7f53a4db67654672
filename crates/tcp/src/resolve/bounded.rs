//! A resolver raced against a deadline: the dial gives up on time even if
//! the resolver ignores the deadline it is handed (Go does the same with
//! its context), and the late answer is dropped.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::Resolver;
use super::pool::{Failed, Pool};
use crate::LookupError;

/// `inner`, with every call bounded by `deadline` (and by the deadline of
/// the call, if earlier). With a deadline, the call runs on a shared pool
/// and the caller waits for it through `iopoll::park` until the deadline:
/// no thread per call, and in a green thread only that green thread waits.
pub(crate) struct Bounded {
    inner: Arc<dyn Resolver>,
    deadline: Option<Instant>,
}

impl Bounded {
    pub(crate) fn new(inner: Arc<dyn Resolver>, deadline: Option<Instant>) -> Bounded {
        Bounded { inner, deadline }
    }

    fn run<T: Send + 'static>(
        &self,
        name: &str,
        deadline: Option<Instant>,
        f: impl FnOnce(&dyn Resolver) -> Result<T, LookupError> + Send + 'static,
    ) -> Result<T, LookupError> {
        let Some(deadline) = earlier(deadline, self.deadline) else {
            return f(&*self.inner);
        };
        let inner = self.inner.clone();
        match pool().run(Some(deadline), move || f(&*inner)) {
            Ok(answer) => answer,
            Err(Failed::Deadline) => Err(LookupError::timeout(name)),
            Err(Failed::Busy) => Err(LookupError::other(name, "too many lookups in flight")),
            Err(Failed::Panicked) => Err(LookupError::other(name, "lookup panicked")),
        }
    }
}

fn earlier(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The threads custom resolvers run on while a caller races them: started
/// on demand (a thread per lookup running at once), at most 32, with 1 024
/// more queued. A resolver stuck for good holds a thread; the callers
/// queued behind stuck ones still leave at their deadlines.
fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool::new("reseau-lookup", 32, 1024))
}

impl Resolver for Bounded {
    fn lookup_ip(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<IpAddr>, LookupError> {
        let d = earlier(deadline, self.deadline);
        let name = host.to_string();
        self.run(host, deadline, move |r| r.lookup_ip(&name, d))
    }

    fn lookup_addrs(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<SocketAddr>, LookupError> {
        let d = earlier(deadline, self.deadline);
        let name = host.to_string();
        self.run(host, deadline, move |r| r.lookup_addrs(&name, d))
    }

    fn lookup_port(&self, service: &str) -> Result<u16, LookupError> {
        let name = service.to_string();
        self.run(&format!("tcp/{service}"), None, move |r| r.lookup_port(&name))
    }
}

impl fmt::Debug for Bounded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bounded").field("deadline", &self.deadline).finish_non_exhaustive()
    }
}
