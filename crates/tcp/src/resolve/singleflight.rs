//! Concurrent identical lookups share one call.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use iopoll::sync::{Condvar, Mutex};

use super::{Resolver, normalize};
use crate::LookupError;

/// Addresses with their scopes, as `lookup_addrs` gives them.
type Answer = Result<Vec<SocketAddr>, LookupError>;

/// Merges concurrent lookups of the same name: the first caller asks the
/// inner resolver, and everyone who asks meanwhile waits for (and gets a
/// copy of) that one answer. Nothing is kept afterwards; see
/// [`CachingResolver`](super::CachingResolver) for that.
///
/// A waiting caller still leaves at its own deadline.
pub struct SingleflightResolver<R> {
    inner: R,
    calls: Mutex<HashMap<String, Arc<Call>>>,
    lookups: AtomicU64,
    shared: AtomicU64,
    waiting: AtomicUsize,
}

struct Call {
    answer: Mutex<Option<Answer>>,
    done: Condvar,
}

impl<R: Resolver> SingleflightResolver<R> {
    /// Coalesce lookups made through `inner`.
    pub fn new(inner: R) -> Self {
        SingleflightResolver {
            inner,
            calls: Mutex::new(HashMap::new()),
            lookups: AtomicU64::new(0),
            shared: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Lookups passed to the inner resolver so far.
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Relaxed)
    }

    /// Lookups answered by sharing another caller's call.
    pub fn shared(&self) -> u64 {
        self.shared.load(Relaxed)
    }

    /// Callers waiting for another caller's lookup right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Relaxed)
    }

    /// The wrapped resolver.
    pub fn inner(&self) -> &R {
        &self.inner
    }
}

impl<R: Resolver> Resolver for SingleflightResolver<R> {
    fn lookup_ip(&self, host: &str, deadline: Option<Instant>) -> Result<Vec<IpAddr>, LookupError> {
        self.lookup_addrs(host, deadline).map(|addrs| super::ips(&addrs))
    }

    fn lookup_addrs(&self, host: &str, deadline: Option<Instant>) -> Answer {
        let key = normalize(host);
        let (call, leader) = {
            let mut calls = self.calls.lock();
            match calls.get(&key) {
                Some(call) => (call.clone(), false),
                None => {
                    let call = Arc::new(Call { answer: Mutex::new(None), done: Condvar::new() });
                    calls.insert(key.clone(), call.clone());
                    (call, true)
                }
            }
        };
        if leader {
            self.lookups.fetch_add(1, Relaxed);
            // Finishes the call even if the inner resolver panics, so the
            // followers and later callers are not left waiting forever.
            let mut finish = Finish { calls: &self.calls, key, call: &call, host, answer: None };
            let answer = self.inner.lookup_addrs(host, deadline);
            finish.answer = Some(answer.clone());
            return answer;
        }
        self.shared.fetch_add(1, Relaxed);
        self.waiting.fetch_add(1, Relaxed);
        let mut answer = call.answer.lock();
        while answer.is_none() {
            match deadline {
                None => call.done.wait(&mut answer),
                Some(d) => {
                    if call.done.wait_until(&mut answer, Some(d)) && answer.is_none() {
                        self.waiting.fetch_sub(1, Relaxed);
                        return Err(LookupError::timeout(host));
                    }
                }
            }
        }
        self.waiting.fetch_sub(1, Relaxed);
        answer.clone().expect("answer present")
    }

    fn lookup_port(&self, service: &str) -> Result<u16, LookupError> {
        self.inner.lookup_port(service)
    }
}

/// The leader's duty, done on drop (on return or unwind): publish the
/// answer, wake the followers, and retire the call.
struct Finish<'a> {
    calls: &'a Mutex<HashMap<String, Arc<Call>>>,
    key: String,
    call: &'a Arc<Call>,
    host: &'a str,
    answer: Option<Answer>,
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        let answer = self.answer.take().unwrap_or_else(|| Err(LookupError::other(self.host, "lookup panicked")));
        *self.call.answer.lock() = Some(answer);
        self.call.done.notify_all();
        let mut calls = self.calls.lock();
        if calls.get(&self.key).is_some_and(|c| Arc::ptr_eq(c, self.call)) {
            calls.remove(&self.key);
        }
    }
}

impl<R> fmt::Debug for SingleflightResolver<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingleflightResolver")
            .field("lookups", &self.lookups.load(Relaxed))
            .field("shared", &self.shared.load(Relaxed))
            .finish_non_exhaustive()
    }
}
