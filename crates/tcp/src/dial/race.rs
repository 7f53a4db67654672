//! Happy eyeballs without a racer thread: the two address families'
//! connects are nonblocking sockets waited on together through the
//! reactor and `iopoll::park`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use iopoll::{DeadlineExceeded, PollFd, Runtime, park};

use super::{
    Begun, Outcome, Plan, TRIES, begin, dial_serial, established, is_addr_not_avail, partial_deadline, self_connected,
};
use crate::conn::Conn;
use crate::error::Error;
use crate::sys;

/// Happy eyeballs on the calling thread: the primaries' connect and, once
/// `delay` has passed (or at once if every primary failed), the
/// fallbacks' connect run as nonblocking sockets, waited on together
/// through `iopoll::park` (an OS thread sleeps; a green thread suspends).
/// The first connection wins; the attempt still in flight is closed.
pub(super) fn dial_parallel(
    primaries: Vec<SocketAddr>,
    fallbacks: Vec<SocketAddr>,
    plan: &Plan,
    delay: Duration,
) -> Outcome {
    let waker = match park::waker() {
        Ok(waker) => waker,
        // No way to be woken: try everything in order instead.
        Err(_) => return dial_serial(&[primaries, fallbacks].concat(), plan),
    };
    let mut cx = Context::from_waker(&waker);
    let mut primary = Family::new(primaries, true);
    let mut fallback = Family::new(fallbacks, false);
    let fallback_at = Instant::now().checked_add(delay);
    loop {
        if let Some(conn) = primary.drive(&mut cx, plan) {
            return Ok(conn);
        }
        if !fallback.started && (primary.is_done() || fallback_at.is_some_and(|at| Instant::now() >= at)) {
            fallback.started = true;
        }
        if fallback.started
            && let Some(conn) = fallback.drive(&mut cx, plan)
        {
            return Ok(conn);
        }
        if primary.is_done() && fallback.is_done() {
            return Err(primary.first_err.or(fallback.first_err).expect("a failed family has an error"));
        }
        // Readiness and the attempts' deadlines arrive through the waker;
        // the fallback's start time is ours to wake for.
        let wake_at = if fallback.started { None } else { fallback_at };
        let wake_at = [wake_at, primary.deadline(), fallback.deadline()].into_iter().flatten().min();
        if let Err(e) = park::park(wake_at) {
            let addr = primary.current_addr().or(fallback.current_addr()).unwrap_or(primary.last_addr);
            return Err((addr, Error::Io(e)));
        }
    }
}

/// One address family of a race: its addresses tried in turn, one
/// connect in flight at a time.
pub(super) struct Family {
    addrs: VecDeque<SocketAddr>,
    current: Option<Attempt>,
    pub(super) first_err: Option<(SocketAddr, Error)>,
    pub(super) started: bool,
    last_addr: SocketAddr,
}

/// A connect in flight, waited on through the global reactor (which has a
/// thread of its own, whatever runtime the connection ends up on).
struct Attempt {
    addr: SocketAddr,
    // Dropped in this order: the registration before the socket.
    pd: PollFd,
    fd: OwnedFd,
    deadline: Option<Instant>,
    tries: u32,
}

impl Family {
    pub(super) fn new(addrs: Vec<SocketAddr>, started: bool) -> Family {
        let last_addr = addrs[0];
        Family { addrs: addrs.into(), current: None, first_err: None, started, last_addr }
    }

    pub(super) fn is_done(&self) -> bool {
        self.current.is_none() && self.addrs.is_empty()
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        self.current.as_ref().and_then(|a| a.deadline)
    }

    pub(super) fn current_addr(&self) -> Option<SocketAddr> {
        self.current.as_ref().map(|a| a.addr)
    }

    fn fail(&mut self, addr: SocketAddr, err: Error) {
        self.first_err.get_or_insert((addr, err));
    }

    /// Make progress without blocking: start the next address when none is
    /// in flight, look at the one in flight. A connection, or `None` if
    /// there is nothing to do but wait (or nothing left to try).
    pub(super) fn drive(&mut self, cx: &mut Context<'_>, plan: &Plan) -> Option<Conn> {
        loop {
            let Some(attempt) = self.current.take() else {
                let addr = self.addrs.pop_front()?;
                self.last_addr = addr;
                match partial_deadline(Instant::now(), plan.deadline, self.addrs.len() + 1) {
                    Ok(deadline) => {
                        if let Some(conn) = self.start(addr, plan, deadline, 0) {
                            return Some(conn);
                        }
                    }
                    Err(e) => {
                        // No time left for any of them.
                        self.addrs.clear();
                        self.fail(addr, e);
                    }
                }
                continue;
            };
            match attempt.pd.poll_write_ready(cx) {
                Poll::Pending => {
                    self.current = Some(attempt);
                    return None;
                }
                Poll::Ready(Err(e)) => {
                    let err = if DeadlineExceeded::is(&e) { Error::Timeout } else { Error::Io(e) };
                    self.fail(attempt.addr, err);
                }
                Poll::Ready(Ok(())) => match sys::take_error(attempt.fd.as_raw_fd()) {
                    Ok(None) => {
                        let Attempt { addr, pd, fd, deadline, tries } = attempt;
                        drop(pd);
                        match established(fd, addr, plan) {
                            Ok(Some(conn)) => return Some(conn),
                            Ok(None) if tries < TRIES => {
                                if let Some(conn) = self.start(addr, plan, deadline, tries) {
                                    return Some(conn);
                                }
                            }
                            Ok(None) => self.fail(addr, self_connected()),
                            Err(e) => self.fail(addr, e),
                        }
                    }
                    Ok(Some(e))
                        if matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EALREADY | libc::EINTR)) =>
                    {
                        self.current = Some(attempt);
                    }
                    Ok(Some(e)) | Err(e) => self.fail(attempt.addr, Error::Io(e)),
                },
            }
        }
    }

    /// Begin connecting to `addr` after `tries` earlier tries, retrying
    /// what may be retried at once. A connection if it completed at once;
    /// otherwise the attempt is in flight, or failed and recorded.
    fn start(&mut self, addr: SocketAddr, plan: &Plan, deadline: Option<Instant>, mut tries: u32) -> Option<Conn> {
        loop {
            tries += 1;
            let retry = tries < TRIES && plan.ephemeral();
            match begin(addr, plan) {
                Ok(Begun::Connected(fd)) => match established(fd, addr, plan) {
                    Ok(Some(conn)) => return Some(conn),
                    Ok(None) if retry => continue,
                    Ok(None) => self.fail(addr, self_connected()),
                    Err(e) => self.fail(addr, e),
                },
                Ok(Begun::InProgress(fd)) => match PollFd::new(&Runtime::global(), fd.as_raw_fd()) {
                    Ok(pd) => {
                        pd.set_write_deadline(deadline);
                        self.current = Some(Attempt { addr, pd, fd, deadline, tries });
                    }
                    Err(e) => self.fail(addr, Error::Io(e)),
                },
                Err(e) if retry && is_addr_not_avail(&e) => continue,
                Err(e) => self.fail(addr, e),
            }
            return None;
        }
    }
}
