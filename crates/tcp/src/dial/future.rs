//! [`Dialer::connect_async`]: the dial as a future, for executors. Nothing
//! in it blocks the thread that polls it:
//! - names are resolved on a pool thread (the resolvers block; the task
//!   waits for the answer through its `Waker`), as is a dial through a
//!   SOCKS5 proxy, whose exchange is blocking code;
//! - IP literals are parsed in place, no thread involved;
//! - the connects are the blocking dial's nonblocking sockets, raced the
//!   same way (the same [`Family`] code), waiting for writability with the
//!   task's `Waker` on reseau's reactor, and for the fallback's start and
//!   the dial's deadline with a reactor timer.
//!
//! # Locks
//! An [`Alarm`]'s `waker` slot is held only to store or take the waker; the
//! timer's callback wakes it after releasing the lock.

use std::future::{Future, poll_fn};
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use iopoll::{Runtime, Timer};
use parking_lot::Mutex;

use super::race::Family;
use super::{Dialer, Outcome, Prepared};
use crate::addr;
use crate::conn::Conn;
use crate::error::{Error, OpError};
use crate::resolve::pool::{Failed, Pool};
use crate::resolve::{self, Purpose, Resolver};

impl Dialer {
    /// [`connect`](Dialer::connect) as a future, for an executor (tokio,
    /// `futures`, your own): it resolves, races happy eyeballs and
    /// connects without ever blocking the thread that polls it, with the
    /// same deadlines, errors and options (resolver, policy, local
    /// address, control, keepalive, SOCKS5 proxy) as `connect`.
    ///
    /// The dialer's timeout counts from this call, not from the first
    /// poll. Names are looked up on a pool thread (the answer wakes the
    /// task); IP literals need none. The connects wait on reseau's
    /// reactor, so the future runs on any executor and needs no tokio.
    /// Dropping it abandons the dial and closes its sockets.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), tcp::OpError> {
    /// use std::time::Duration;
    /// let conn = tcp::Dialer::new().timeout(Duration::from_secs(5)).connect_async("localhost:8080").await?;
    /// # Ok(()) }
    /// ```
    pub fn connect_async(&self, address: &str) -> impl Future<Output = Result<Conn, OpError>> + Send + 'static + use<> {
        let deadline = self.deadline_from(Instant::now());
        let dialer = self.clone();
        let address = address.to_string();
        async move { dialer.dial_async(address, deadline).await }
    }

    async fn dial_async(self, address: String, deadline: Option<Instant>) -> Result<Conn, OpError> {
        if self.proxy.is_some() {
            // The SOCKS5 exchange is blocking code: it runs on a pool
            // thread, under the same deadline.
            let dialer = self.clone();
            let target = address.clone();
            let job = move || match &dialer.proxy {
                Some(proxy) => dialer.connect_via(proxy, &target, deadline),
                None => unreachable!("checked above"),
            };
            return match off_thread(deadline, job).await {
                Ok(result) => result,
                Err(failed) => Err(self.error_named(&address, failed_error(failed))),
            };
        }
        if expired(deadline) {
            return Err(self.error_named(&address, Error::Timeout));
        }
        let addrs = if is_literal(&address) {
            // Nothing for a resolver to do: no thread.
            resolve::resolve(Purpose::Dial, self.network, &address, &NoLookups, self.policy, deadline)
                .map_err(|e| self.error(None, e))?
        } else {
            let resolver: Arc<dyn Resolver> = match &self.resolver {
                Some(custom) if deadline.is_some() => Arc::new(resolve::Bounded::new(custom.clone(), deadline)),
                Some(custom) => custom.clone(),
                None => resolve::default_resolver(),
            };
            let (network, policy, target) = (self.network, self.policy, address.clone());
            let job = move || resolve::resolve(Purpose::Dial, network, &target, &*resolver, policy, deadline);
            match off_thread(deadline, job).await {
                Ok(resolved) => resolved.map_err(|e| self.error(None, e))?,
                Err(failed) => return Err(self.error_named(&address, failed_error(failed))),
            }
        };
        // An answer can come just as the time runs out: dial nothing then.
        if expired(deadline) {
            return Err(self.error_named(&address, Error::Timeout));
        }
        let mut race = Race::new(self.prepare(addrs, deadline)?);
        poll_fn(|cx| race.poll(cx)).await.map_err(|(addr, err)| self.error(Some(addr), err))
    }
}

fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| d <= Instant::now())
}

/// Whether `address` needs no resolver: an IP literal (or an empty host)
/// and a numeric port. Anything else, malformed addresses included, goes
/// to the pool thread, which reports the same errors `connect` does.
fn is_literal(address: &str) -> bool {
    let Ok((host, port)) = addr::split_host_port(address) else { return false };
    let host = host.split('%').next().unwrap_or(host);
    (host.is_empty() || host.parse::<IpAddr>().is_ok()) && port.parse::<u16>().is_ok()
}

/// The resolver for literal addresses, which never reach it.
struct NoLookups;

impl Resolver for NoLookups {
    fn lookup_ip(&self, host: &str, _: Option<Instant>) -> Result<Vec<IpAddr>, crate::LookupError> {
        Err(crate::LookupError::other(host, "no resolver for a literal address"))
    }

    fn lookup_port(&self, service: &str) -> Result<u16, crate::LookupError> {
        Err(crate::LookupError::other(service, "no resolver for a literal address"))
    }
}

fn failed_error(failed: Failed) -> Error {
    match failed {
        Failed::Deadline => Error::Timeout,
        Failed::Busy => Error::Io(std::io::Error::other("too many dials resolving at once")),
        Failed::Panicked => Error::Io(std::io::Error::other("the resolver panicked")),
    }
}

/// The threads async dials resolve names on (and run SOCKS5 exchanges
/// on). Each job mostly waits: for the system resolver's own pool, a
/// custom resolver, or a proxy.
fn pool() -> &'static Pool {
    static POOL: std::sync::OnceLock<Pool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| Pool::new("reseau-dial", 16, 1024))
}

/// Run `job` on the dial pool; its answer, or `Failed::Deadline` once
/// `deadline` has passed (the job's late answer is then dropped).
async fn off_thread<T: Send + 'static>(
    deadline: Option<Instant>,
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Failed> {
    let answer = pool().spawn(job)?;
    let mut alarm = deadline.map(Alarm::new);
    poll_fn(|cx| {
        if let Poll::Ready(v) = answer.poll(cx) {
            return Poll::Ready(v);
        }
        match alarm.as_mut().map(|a| a.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(Failed::Deadline)),
            _ => Poll::Pending,
        }
    })
    .await
}

/// Happy eyeballs as a state machine polled by the task: the blocking
/// race's loop (`race::dial_parallel`), with the task's `Waker` in place
/// of `iopoll::park`. Without fallbacks it is `dial_serial`: the
/// addresses in turn, each with its share of the time left.
struct Race {
    prepared: Prepared,
    primary: Family,
    fallback: Option<Family>,
    fallback_at: Option<Instant>,
    /// Wakes the task when the fallbacks are due to start.
    alarm: Option<Alarm>,
}

impl Race {
    fn new(mut prepared: Prepared) -> Race {
        let primary = Family::new(std::mem::take(&mut prepared.primaries), true);
        let fallbacks = std::mem::take(&mut prepared.fallbacks);
        let fallback = (!fallbacks.is_empty()).then(|| Family::new(fallbacks, false));
        let fallback_at = fallback.as_ref().and_then(|_| Instant::now().checked_add(prepared.delay));
        Race { prepared, primary, fallback, fallback_at, alarm: None }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        let plan = self.prepared.parts.plan();
        loop {
            if let Some(conn) = self.primary.drive(cx, &plan) {
                return Poll::Ready(Ok(conn));
            }
            if let Some(fallback) = &mut self.fallback {
                let due = self.fallback_at.is_some_and(|at| Instant::now() >= at);
                if !fallback.started && (self.primary.is_done() || due) {
                    fallback.started = true;
                    self.alarm = None;
                }
                if fallback.started
                    && let Some(conn) = fallback.drive(cx, &plan)
                {
                    return Poll::Ready(Ok(conn));
                }
            }
            let fallback_done = self.fallback.as_ref().is_none_or(Family::is_done);
            if self.primary.is_done() && fallback_done {
                let first = self.primary.first_err.take();
                let err = first.or_else(|| self.fallback.as_mut().and_then(|f| f.first_err.take()));
                return Poll::Ready(Err(err.expect("a failed family has an error")));
            }
            // Readiness and the attempts' deadlines come through the
            // waker; the fallback's start time is ours to wake for.
            match (&self.fallback, self.fallback_at) {
                (Some(fallback), Some(at)) if !fallback.started => {
                    let alarm = self.alarm.get_or_insert_with(|| Alarm::new(at));
                    if alarm.poll(cx).is_ready() {
                        // Due: the next round starts the fallbacks.
                        continue;
                    }
                }
                _ => {}
            }
            return Poll::Pending;
        }
    }
}

/// A reactor timer that wakes the task polling it once `at` has passed.
struct Alarm {
    at: Instant,
    waker: Arc<Mutex<Option<Waker>>>,
    timer: Timer,
}

impl Alarm {
    fn new(at: Instant) -> Alarm {
        let waker: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
        let slot = waker.clone();
        let timer = Runtime::global().timer_at(at, move || {
            let waker = slot.lock().take();
            if let Some(waker) = waker {
                waker.wake();
            }
        });
        Alarm { at, waker, timer }
    }

    /// `Ready` once `at` has passed; until then the task's `Waker` is left
    /// for the timer.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        *self.waker.lock() = Some(cx.waker().clone());
        // The timer fires only after `at`: if it ran before the waker was
        // left, `at` has passed by now.
        if Instant::now() >= self.at { Poll::Ready(()) } else { Poll::Pending }
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        self.timer.cancel();
    }
}
