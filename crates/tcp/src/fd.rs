//! `NetFd`: an owned socket on the reactor (Go's `internal/poll.FD`).
//!
//! It pairs the descriptor with its [`PollFd`] and with Go's `fdMutex`
//! rules, written as a reference count and two locks:
//! - every operation holds a reference while it uses the fd number;
//! - reads (and accepts) hold the read lock, writes the write lock, so one
//!   reader and one writer run at once and further callers queue;
//! - `close` marks the fd closed and wakes every waiter, but the fd number
//!   is released (`close(2)`) only when the last reference is dropped, and
//!   `close` returns only after that. A concurrent close can therefore never
//!   make another thread's syscall land on a reused descriptor.
//!
//! The I/O loop is Go's: check closed and deadline, try the nonblocking
//! syscall, and on `WouldBlock` wait and try again.
//!
//! # Locks
//! `read_lock` and `write_lock` are held for a whole read or write, waits
//! included; `released` only to publish or await the release. All three are
//! `iopoll::sync` locks, so a caller queued on one (on an OS thread or in a
//! green thread) parks through `iopoll::park` rather than blocking a worker.
//! They never nest with each other; the `PollFd`'s own locks are taken
//! inside the read or write lock.

use std::fmt;
use std::io;
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Instant;

use iopoll::sync::{Condvar, Mutex, MutexGuard};
use iopoll::{Closed, PollFd, Runtime};

use crate::refcount::{Last, RefCount};
use crate::sys;

pub(crate) struct NetFd {
    fd: RawFd,
    pd: PollFd,
    /// Go's `fdMutex` count: the open descriptor holds one reference,
    /// dropped by `close`; the last one out releases the fd number.
    refs: RefCount,
    read_lock: Mutex<()>,
    write_lock: Mutex<()>,
    /// Reads since the last one that found data waiting: while nonzero,
    /// reads wait for readability before `recv` (see `read`).
    idle_reads: AtomicU32,
    /// The last stream read returned short: it emptied the kernel's queue
    /// (see `read_stream`). Serialised by the read lock.
    drained: AtomicBool,
    released: Mutex<bool>,
    released_cv: Condvar,
}

/// A reference held for the length of one operation.
pub(crate) struct Ref<'a>(&'a NetFd);

impl Drop for Ref<'_> {
    fn drop(&mut self) {
        self.0.decref();
    }
}

/// A reference plus the read or write lock.
pub(crate) struct Locked<'a> {
    _lock: MutexGuard<'a, ()>,
    _ref: Ref<'a>,
}

impl NetFd {
    /// Take ownership of a nonblocking socket and track it on `rt`.
    pub(crate) fn new(fd: OwnedFd, rt: &Runtime) -> io::Result<NetFd> {
        let pd = PollFd::new(rt, std::os::fd::AsRawFd::as_raw_fd(&fd))?;
        Ok(NetFd {
            fd: fd.into_raw_fd(),
            pd,
            refs: RefCount::new(),
            read_lock: Mutex::new(()),
            write_lock: Mutex::new(()),
            // New connections start waiting first: a client that just sent
            // its request, or a server that just accepted, usually has to.
            idle_reads: AtomicU32::new(1),
            drained: AtomicBool::new(false),
            released: Mutex::new(false),
            released_cv: Condvar::new(),
        })
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd
    }

    pub(crate) fn poll_fd(&self) -> &PollFd {
        &self.pd
    }

    pub(crate) fn is_open(&self) -> bool {
        self.refs.is_open()
    }

    /// Take a reference, failing with `Closed` once closing has begun.
    pub(crate) fn incref(&self) -> io::Result<Ref<'_>> {
        if self.refs.incref() { Ok(Ref(self)) } else { Err(Closed.into()) }
    }

    fn decref(&self) {
        if self.refs.decref() == Last::Release {
            self.release();
        }
    }

    pub(crate) fn lock_read(&self) -> io::Result<Locked<'_>> {
        let r = self.incref()?;
        Ok(Locked { _lock: self.read_lock.lock(), _ref: r })
    }

    pub(crate) fn lock_write(&self) -> io::Result<Locked<'_>> {
        let r = self.incref()?;
        Ok(Locked { _lock: self.write_lock.lock(), _ref: r })
    }

    /// Close: wake every waiter with `Closed`, then wait until the last
    /// in-flight operation has let go and the descriptor is released.
    /// Idempotent.
    pub(crate) fn close(&self) {
        if self.refs.close() {
            self.pd.close();
            self.decref();
        }
        let mut released = self.released.lock();
        while !*released {
            self.released_cv.wait(&mut released);
        }
    }

    fn release(&self) {
        // SAFETY: the last reference is gone, so no syscall can still be
        // using this fd number; it is closed exactly once, here.
        unsafe { sys::close(self.fd) };
        *self.released.lock() = true;
        self.released_cv.notify_all();
    }

    /// Read once: at least one byte, or 0 at end of stream.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let _op = self.lock_read()?;
        if buf.is_empty() {
            return Ok(0);
        }
        self.read_loop(|fd| sys::recv(fd, buf))
    }

    /// Read once from a TCP stream: as [`read`](NetFd::read), but after a
    /// read that returned short (so it emptied the kernel's queue; TCP
    /// copies all it has), a green thread waits for the next readable edge
    /// before its syscall instead of making one that would say
    /// `WouldBlock`: request/response traffic then costs one `recv` per
    /// message, not two. Not for Unix sockets, whose reads stop short of a
    /// message carrying other credentials or descriptors.
    pub(crate) fn read_stream(&self, buf: &mut [u8]) -> io::Result<usize> {
        let _op = self.lock_read()?;
        if buf.is_empty() {
            return Ok(0);
        }
        // Taken, not read: if this wait ends without the read below (a
        // deadline), the next read must try the syscall first, since the
        // edge that woke it may have been spent.
        if self.drained.swap(false, Relaxed) {
            self.pd.wait_readable_after_drain()?;
        }
        let n = self.read_loop(|fd| sys::recv(fd, buf))?;
        self.drained.store(n > 0 && n < buf.len(), Relaxed);
        Ok(n)
    }

    /// Go's I/O loop for the read direction (reads and accepts), run under
    /// the read lock: check closed and deadline, try `op`, wait on
    /// `WouldBlock`, retry.
    ///
    /// A descriptor whose reads keep finding nothing (request/response
    /// traffic, an idle listener) waits for readability first and skips the
    /// syscall that would fail: two syscalls per message instead of three.
    /// Every 16th operation still tries the syscall first, and one that
    /// finds data switches back, so a streaming reader pays nothing.
    ///
    /// In a green thread the wait is edge-triggered (the scheduler's reactor
    /// reports new readiness, not lasting readiness), so it must follow a
    /// `WouldBlock`: there the syscall always comes first.
    pub(crate) fn read_loop<T>(&self, mut op: impl FnMut(RawFd) -> io::Result<T>) -> io::Result<T> {
        // Readers are serialised by the read lock: Relaxed is enough.
        let idle = self.idle_reads.load(Relaxed);
        let mut wait_first = !idle.is_multiple_of(16) && !iopoll::park::in_green_thread();
        loop {
            self.pd.prepare_read()?;
            if wait_first {
                self.pd.wait_readable()?;
            }
            match op(self.fd) {
                Ok(v) => {
                    // Data without waiting: back to trying first. Otherwise
                    // count another operation that had to wait.
                    self.idle_reads.store(if wait_first { idle.wrapping_add(1) } else { 0 }, Relaxed);
                    return Ok(v);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_first = true,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::ECONNABORTED)) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Write all of `buf` unless an error or the deadline stops it. Bytes
    /// already written are reported as a short count (the error comes back
    /// on the next call), so no caller ever loses track of what was sent.
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let _op = self.lock_write()?;
        let mut done = 0;
        loop {
            if let Err(e) = self.pd.prepare_write() {
                return if done > 0 { Ok(done) } else { Err(e) };
            }
            if done == buf.len() {
                return Ok(done);
            }
            match sys::send(self.fd, &buf[done..]) {
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = self.pd.wait_writable() {
                        return if done > 0 { Ok(done) } else { Err(e) };
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return if done > 0 { Ok(done) } else { Err(e) },
            }
        }
    }

    /// Go's I/O loop for the write direction, run under the write lock:
    /// check closed and deadline, try `op` once, wait on `WouldBlock`,
    /// retry. For writes whose one syscall is the whole operation (a
    /// message with descriptors attached).
    pub(crate) fn write_loop<T>(&self, mut op: impl FnMut(RawFd) -> io::Result<T>) -> io::Result<T> {
        loop {
            self.pd.prepare_write()?;
            match op(self.fd) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.pd.wait_writable()?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    /// The `Waker` form of `read`: one attempt, then register interest.
    pub(crate) fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(self.incref().map(|_| 0));
        }
        self.poll_read_loop(cx, |fd| sys::recv(fd, buf))
    }

    /// The `Waker` form of `read_loop`, for reads and accepts: try `op`,
    /// and on `WouldBlock` leave the task's `Waker` with the reactor.
    pub(crate) fn poll_read_loop<T>(
        &self,
        cx: &mut Context<'_>,
        mut op: impl FnMut(RawFd) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        let _op = match self.incref() {
            Ok(r) => r,
            Err(e) => return Poll::Ready(Err(e)),
        };
        loop {
            if let Err(e) = self.pd.prepare_read() {
                return Poll::Ready(Err(e));
            }
            match op(self.fd) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => match self.pd.poll_read_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                },
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::ECONNABORTED)) => {}
                other => return Poll::Ready(other),
            }
        }
    }

    /// The `Waker` form of a single write: as many bytes as fit now.
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let _op = match self.incref() {
            Ok(r) => r,
            Err(e) => return Poll::Ready(Err(e)),
        };
        loop {
            if let Err(e) = self.pd.prepare_write() {
                return Poll::Ready(Err(e));
            }
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            match sys::send(self.fd, buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => match self.pd.poll_write_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                },
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return Poll::Ready(other),
            }
        }
    }

    /// Run a control syscall (setsockopt, shutdown, ...) under a reference.
    pub(crate) fn control<T>(&self, f: impl FnOnce(RawFd) -> io::Result<T>) -> io::Result<T> {
        let _r = self.incref()?;
        f(self.fd)
    }

    /// Move both deadlines (`Closed` once closed), waking blocked calls.
    pub(crate) fn set_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        self.control(|_| {
            self.pd.set_deadline(d);
            Ok(())
        })
    }

    /// Move the read deadline, waking a blocked read.
    pub(crate) fn set_read_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        self.control(|_| {
            self.pd.set_read_deadline(d);
            Ok(())
        })
    }

    /// Move the write deadline, waking a blocked write.
    pub(crate) fn set_write_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        self.control(|_| {
            self.pd.set_write_deadline(d);
            Ok(())
        })
    }

    /// `shutdown(2)` one or both directions.
    pub(crate) fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        self.control(|fd| crate::sys::shutdown(fd, how))
    }
}

impl Drop for NetFd {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for NetFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetFd").field("fd", &self.fd).field("open", &self.is_open()).finish()
    }
}
