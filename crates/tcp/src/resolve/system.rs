//! The operating system's resolver, kept off the caller's thread.

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use iopoll::sync::OneShot;
use parking_lot::{Condvar, Mutex};

use super::{Resolver, services};
use crate::LookupError;
use crate::sys::{self, LookupFailure};

/// `getaddrinfo` and the services database, run on a small pool of
/// threads so a caller can stop waiting at its deadline. A lookup that
/// cannot be cancelled (the C library offers no way) finishes in the
/// background and its answer is dropped.
///
/// ```no_run
/// use tcp::resolve::{Resolver, SystemResolver};
/// let ips = SystemResolver::new().lookup_ip("localhost", None)?;
/// assert!(ips.iter().all(|ip| ip.is_loopback()));
/// # Ok::<(), tcp::LookupError>(())
/// ```
#[derive(Clone, Copy, Default)]
pub struct SystemResolver {
    _private: (),
}

impl SystemResolver {
    /// The system resolver.
    pub fn new() -> SystemResolver {
        SystemResolver { _private: () }
    }
}

impl fmt::Debug for SystemResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SystemResolver")
    }
}

impl Resolver for SystemResolver {
    fn lookup_ip(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<IpAddr>, LookupError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if host.is_empty() {
            return Err(LookupError::not_found(host));
        }
        let name = host.to_string();
        let result = pool().run(deadline, move || sys::getaddrinfo(&name));
        match result {
            Some(Ok(ips)) => Ok(ips),
            Some(Err(LookupFailure::NotFound)) => Err(LookupError::not_found(host)),
            Some(Err(LookupFailure::Other(msg))) => Err(LookupError::other(host, msg)),
            None if deadline.is_some_and(|d| Instant::now() >= d) => Err(LookupError::timeout(host)),
            None => Err(LookupError::other(host, "too many lookups in flight")),
        }
    }

    fn lookup_port(&self, service: &str) -> Result<u16, LookupError> {
        if let Ok(port) = service.parse::<u16>() {
            return Ok(port);
        }
        let name = service.to_string();
        pool()
            .run(None, move || sys::service_port(&name))
            .flatten()
            .or_else(|| services::well_known(service))
            .ok_or_else(|| services::unknown(service))
    }
}

/// At most this many lookups run at once...
const THREADS: usize = 4;
/// ...and at most this many wait for a thread.
const QUEUE: usize = 256;

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
}

struct PoolState {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(PoolState { jobs: VecDeque::new(), threads: 0, idle: 0 }),
        work: Condvar::new(),
    })
}

impl Pool {
    /// Run `f` on a pool thread and wait for its answer until `deadline`.
    /// `None` if the deadline passed first or the queue is full.
    fn run<T: Send + 'static>(
        &'static self,
        deadline: Option<Instant>,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        // The caller waits through `iopoll::park`: in a green thread only
        // that green thread waits.
        let answer = Arc::new(OneShot::new());
        let tx = answer.clone();
        {
            let mut st = self.state.lock();
            if st.jobs.len() >= QUEUE {
                return None;
            }
            st.jobs.push_back(Box::new(move || {
                // The caller may have given up; then the answer is dropped.
                tx.put(f());
            }));
            // More jobs queued than idle threads to take them (an idle
            // thread counts as idle until it wakes): add a thread, so a
            // slow lookup never holds up one queued behind it.
            if st.jobs.len() > st.idle && st.threads < THREADS {
                let spawned = std::thread::Builder::new().name("reseau-resolver".into()).spawn(move || self.work());
                if spawned.is_ok() {
                    st.threads += 1;
                } else if st.threads == 0 {
                    // Nobody would ever run it.
                    st.jobs.pop_back();
                    return None;
                }
            }
            self.work.notify_one();
        }
        answer.take(deadline)
    }

    fn work(&self) {
        let mut st = self.state.lock();
        loop {
            match st.jobs.pop_front() {
                Some(job) => {
                    drop(st);
                    job();
                    st = self.state.lock();
                }
                None => {
                    st.idle += 1;
                    self.work.wait(&mut st);
                    st.idle -= 1;
                }
            }
        }
    }
}
