//! Memory BIOs: the byte queues between an `SSL` and the socket.
//!
//! A [`MemBio`] is a BIO of reseau's own method whose bytes live in a Rust
//! buffer (a [`Pipe`]) rather than OpenSSL's `BIO_s_mem`: a write appends,
//! a read takes from the front, and the connection drains the output by
//! taking the buffer whole, so ciphertext is copied once on each side
//! (`BIO_s_mem` zero-fills what it grows, and moves unread bytes to the
//! front on every write). It owns a fresh BIO until
//! [`into_raw`](MemBio::into_raw) hands it to an `SSL` (`SSL_set_bio`),
//! which frees it with itself. From then on the only way to touch it is a
//! [`BioRef`] that the `Ssl` lends out for the length of a borrow of
//! itself, so no handle can outlive its owner.

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::OnceLock;

use openssl_sys as sys;

/// `BIO_CTRL_RESET`, `_PENDING` and `_WPENDING` (openssl-sys does not
/// export them).
const BIO_CTRL_RESET: libc::c_int = 1;
const BIO_CTRL_PENDING: libc::c_int = 10;
const BIO_CTRL_WPENDING: libc::c_int = 13;

/// The bytes behind one BIO, owned by the BIO (freed by its destroy).
#[derive(Debug, Default)]
struct Pipe {
    buf: Vec<u8>,
    /// How much of `buf` has been read already.
    read: usize,
    /// While set, a flush fails as long as bytes wait (see
    /// [`BioRef::refusing_flushes`]), and `refused` records that it did.
    refuse_flushes: bool,
    refused: bool,
}

impl Pipe {
    fn unread(&self) -> &[u8] {
        &self.buf[self.read..]
    }

    /// Mark `n` more bytes read; an emptied buffer starts over, keeping
    /// its allocation.
    fn advance(&mut self, n: usize) {
        self.read += n;
        if self.read == self.buf.len() {
            self.buf.clear();
            self.read = 0;
        }
    }

    fn append(&mut self, data: &[u8]) {
        // Reclaim the read front once it is most of the buffer, so a pipe
        // that is never quite emptied does not grow without bound.
        if self.read > 0 && self.read >= self.buf.len() / 2 {
            self.buf.drain(..self.read);
            self.read = 0;
        }
        self.buf.extend_from_slice(data);
    }
}

/// The pipe of a BIO of our method.
///
/// # Safety
/// `bio` is a live BIO of [`method`] (so its data is a live `Pipe`), and
/// no other reference to that `Pipe` exists while the result is used.
unsafe fn pipe<'a>(bio: *mut sys::BIO) -> &'a mut Pipe {
    // SAFETY: per the contract, the data is a live, unaliased `Pipe`.
    unsafe { &mut *sys::BIO_get_data(bio).cast::<Pipe>() }
}

/// Our BIO method, made once per process and never freed.
fn method() -> Result<*const sys::BIO_METHOD, String> {
    struct Method(*mut sys::BIO_METHOD);
    // SAFETY: a BIO_METHOD is immutable once built, and OpenSSL shares
    // them between threads.
    unsafe impl Send for Method {}
    // SAFETY: as above.
    unsafe impl Sync for Method {}
    static METHOD: OnceLock<Result<Method, String>> = OnceLock::new();
    let m = METHOD.get_or_init(|| {
        // SAFETY: a new method table, filled with our callbacks, which
        // follow OpenSSL's contracts for them (see each).
        unsafe {
            let m = sys::BIO_meth_new(sys::BIO_TYPE_NONE, c"reseau pipe".as_ptr());
            if m.is_null() {
                return Err(super::drain_errors());
            }
            let ok = sys::BIO_meth_set_write__fixed_rust(m, Some(pipe_write)) == 1
                && sys::BIO_meth_set_read__fixed_rust(m, Some(pipe_read)) == 1
                && sys::BIO_meth_set_ctrl__fixed_rust(m, Some(pipe_ctrl)) == 1
                && sys::BIO_meth_set_create__fixed_rust(m, Some(pipe_create)) == 1
                && sys::BIO_meth_set_destroy__fixed_rust(m, Some(pipe_destroy)) == 1;
            if !ok {
                sys::BIO_meth_free(m);
                return Err(super::drain_errors());
            }
            Ok(Method(m))
        }
    });
    m.as_ref().map(|m| m.0.cast_const()).map_err(Clone::clone)
}

/// `create`: give the new BIO an empty pipe.
unsafe extern "C" fn pipe_create(bio: *mut sys::BIO) -> libc::c_int {
    let p = Box::into_raw(Box::<Pipe>::default());
    // SAFETY: `bio` is the BIO being created; it owns `p` until destroy.
    unsafe {
        sys::BIO_set_data(bio, p.cast());
        sys::BIO_set_init(bio, 1);
    }
    1
}

/// `destroy`: free the pipe, exactly once (the data is cleared with it).
unsafe extern "C" fn pipe_destroy(bio: *mut sys::BIO) -> libc::c_int {
    if bio.is_null() {
        return 0;
    }
    // SAFETY: `bio` is being freed; its data is the Box made in create,
    // or null if already destroyed.
    unsafe {
        let p = sys::BIO_get_data(bio).cast::<Pipe>();
        if !p.is_null() {
            drop(Box::from_raw(p));
        }
        sys::BIO_set_data(bio, std::ptr::null_mut());
        sys::BIO_set_init(bio, 0);
    }
    1
}

/// `write`: append, always all of it.
unsafe extern "C" fn pipe_write(bio: *mut sys::BIO, data: *const libc::c_char, len: libc::c_int) -> libc::c_int {
    // SAFETY: a BIO of our method; OpenSSL holds no other reference to
    // its pipe during the call, nor does Rust (see `BioRef`).
    unsafe { sys::BIO_clear_flags(bio, sys::BIO_FLAGS_RWS | sys::BIO_FLAGS_SHOULD_RETRY) };
    if len <= 0 || data.is_null() {
        return 0;
    }
    // SAFETY: OpenSSL passes `len` readable bytes at `data`; the pipe as above.
    unsafe { pipe(bio).append(std::slice::from_raw_parts(data.cast(), len as usize)) };
    len
}

/// `read`: take from the front; empty, "retry later", as a nonblocking
/// socket says (so OpenSSL reports `WANT_READ`, never end of file).
unsafe extern "C" fn pipe_read(bio: *mut sys::BIO, out: *mut libc::c_char, len: libc::c_int) -> libc::c_int {
    // SAFETY: a BIO of our method, its pipe unaliased (as in `pipe_write`).
    let p = unsafe {
        sys::BIO_clear_flags(bio, sys::BIO_FLAGS_RWS | sys::BIO_FLAGS_SHOULD_RETRY);
        pipe(bio)
    };
    if len <= 0 || out.is_null() {
        return 0;
    }
    let n = p.unread().len().min(len as usize);
    if n == 0 {
        // SAFETY: a live BIO.
        unsafe { sys::BIO_set_flags(bio, sys::BIO_FLAGS_READ | sys::BIO_FLAGS_SHOULD_RETRY) };
        return -1;
    }
    // SAFETY: OpenSSL passes `len` >= n writable bytes at `out`, which
    // cannot overlap the pipe's buffer.
    unsafe { std::ptr::copy_nonoverlapping(p.unread().as_ptr(), out.cast::<u8>(), n) };
    p.advance(n);
    n as libc::c_int
}

/// `ctrl`: what OpenSSL asks of a byte queue; anything else is "no".
unsafe extern "C" fn pipe_ctrl(
    bio: *mut sys::BIO,
    cmd: libc::c_int,
    _larg: libc::c_long,
    _parg: *mut libc::c_void,
) -> libc::c_long {
    // SAFETY: a BIO of our method, its pipe unaliased (as in `pipe_write`).
    let p = unsafe { pipe(bio) };
    match cmd {
        BIO_CTRL_PENDING | BIO_CTRL_WPENDING => p.unread().len() as libc::c_long,
        sys::BIO_CTRL_FLUSH if p.refuse_flushes && !p.unread().is_empty() => {
            p.refused = true;
            0
        }
        sys::BIO_CTRL_FLUSH => 1,
        BIO_CTRL_RESET => {
            p.buf.clear();
            p.read = 0;
            1
        }
        _ => 0,
    }
}

/// An owned memory BIO, freed on drop unless handed to an `SSL`.
#[derive(Debug)]
pub(crate) struct MemBio {
    ptr: NonNull<sys::BIO>,
}

// SAFETY: a BIO is plain memory with no thread affinity, and a `MemBio` is
// its only handle.
unsafe impl Send for MemBio {}

impl MemBio {
    /// An empty memory BIO that reports "retry later" (not EOF) when read
    /// empty, as a nonblocking socket would.
    pub(crate) fn new() -> Result<MemBio, String> {
        let method = method()?;
        // SAFETY: a method table that lives for the whole process.
        let ptr = unsafe { sys::BIO_new(method) };
        let ptr = NonNull::new(ptr).ok_or_else(super::drain_errors)?;
        Ok(MemBio { ptr })
    }

    /// Give up ownership, for `SSL_set_bio`; the caller's `SSL` now frees it.
    pub(crate) fn into_raw(self) -> NonNull<sys::BIO> {
        let ptr = self.ptr;
        std::mem::forget(self);
        ptr
    }
}

impl Drop for MemBio {
    fn drop(&mut self) {
        // SAFETY: we still own this BIO; it is freed exactly once, here.
        unsafe { sys::BIO_free_all(self.ptr.as_ptr()) };
    }
}

/// A memory BIO owned by an `SSL`, borrowed for as long as `'a`.
pub(crate) struct BioRef<'a> {
    ptr: NonNull<sys::BIO>,
    _owner: PhantomData<&'a mut ()>,
}

impl BioRef<'_> {
    /// # Safety
    /// `ptr` must be a [`MemBio`]'s BIO that stays alive, and is used by
    /// nobody else (no OpenSSL call on its `SSL` is running), for the
    /// lifetime chosen for the result.
    pub(crate) unsafe fn new<'a>(ptr: NonNull<sys::BIO>) -> BioRef<'a> {
        BioRef { ptr, _owner: PhantomData }
    }

    /// This BIO's pipe, for the length of one method call.
    fn pipe(&mut self) -> &mut Pipe {
        // SAFETY: a MemBio's BIO (per `new`); each caller below drops the
        // reference before OpenSSL can run, so it is the only one.
        unsafe { pipe(self.ptr.as_ptr()) }
    }

    /// Append `data`.
    pub(crate) fn write(&mut self, data: &[u8]) {
        self.pipe().append(data);
    }

    /// Make `out`'s buffer this (empty) BIO's, so writes append to what it
    /// holds; `drain_into` an empty `out` gives it all back. A BIO that
    /// still holds bytes keeps them, and `out` stays as it is.
    pub(crate) fn lend(&mut self, out: &mut Vec<u8>) {
        let p = self.pipe();
        if p.buf.is_empty() {
            p.read = 0;
            std::mem::swap(out, &mut p.buf);
        }
    }

    /// Move everything queued into `out`: the buffer itself when `out` is
    /// empty (no copy), else appended.
    pub(crate) fn drain_into(&mut self, out: &mut Vec<u8>) {
        let p = self.pipe();
        if out.is_empty() && p.read == 0 {
            std::mem::swap(out, &mut p.buf);
        } else {
            out.extend_from_slice(p.unread());
            p.buf.clear();
            p.read = 0;
        }
    }

    /// Run `f`, an OpenSSL call writing to this BIO, with its flushes
    /// refused while output waits here; returns `f`'s result and whether a
    /// flush was refused. OpenSSL flushes where a flight is complete and
    /// its peer can go on (after a ClientHello, a server's Finished, a
    /// client's Finished, each ticket), and only then does the work that
    /// follows (the application keys): a refused flush makes the call stop
    /// there, so that the flight leaves before that work rather than after.
    pub(crate) fn refusing_flushes<R>(&mut self, f: impl FnOnce() -> R) -> (R, bool) {
        /// Lets flushes through again, even if `f` unwinds.
        struct Off(NonNull<sys::BIO>);
        impl Drop for Off {
            fn drop(&mut self) {
                // SAFETY: the BIO of the enclosing `BioRef`, still alive;
                // OpenSSL's call has returned, so no other reference.
                unsafe { pipe(self.0.as_ptr()).refuse_flushes = false };
            }
        }
        {
            let p = self.pipe();
            p.refuse_flushes = true;
            p.refused = false;
        }
        let off = Off(self.ptr);
        let r = f();
        drop(off);
        (r, std::mem::take(&mut self.pipe().refused))
    }
}
