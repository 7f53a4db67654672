//! A resolver for the tests: a fixed table, a count of its calls, and
//! (if asked) a gate that holds every call until the test opens it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tcp::LookupError;
use tcp::resolve::Resolver;
use testkit::PATIENCE;

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

/// Poll `cond` (yielding) until it holds; fail the test after [`PATIENCE`].
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting until {what}");
        std::thread::yield_now();
    }
}
