//! Memory BIOs: the byte queues between an `SSL` and the socket.
//!
//! A [`MemBio`] owns a fresh BIO until [`into_raw`](MemBio::into_raw) hands
//! it to an `SSL` (`SSL_set_bio`), which frees it with itself. From then
//! on the only way to touch it is a [`BioRef`] that the `Ssl` lends out for
//! the length of a borrow of itself, so no handle can outlive its owner.

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr::NonNull;

use openssl_sys as sys;

/// `BIO_CTRL_PENDING` (openssl-sys does not export it).
const BIO_CTRL_PENDING: libc::c_int = 10;
/// `BIO_CB_CTRL`: a callback's `oper` before a `BIO_ctrl` (after it, the
/// `BIO_CB_RETURN` bit is added).
const BIO_CB_CTRL: libc::c_int = 0x06;

/// OpenSSL's `BIO_callback_fn_ex`.
pub(crate) type BioCallbackEx = unsafe extern "C" fn(
    bio: *mut sys::BIO,
    oper: libc::c_int,
    argp: *const libc::c_char,
    len: libc::size_t,
    argi: libc::c_int,
    argl: libc::c_long,
    ret: libc::c_int,
    processed: *mut libc::size_t,
) -> libc::c_long;

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
        // SAFETY: BIO_s_mem returns a static method table.
        let ptr = unsafe { sys::BIO_new(sys::BIO_s_mem()) };
        let ptr = NonNull::new(ptr).ok_or_else(super::drain_errors)?;
        // SAFETY: `ptr` is a live memory BIO; this ctrl takes no pointer.
        unsafe { sys::BIO_ctrl(ptr.as_ptr(), sys::BIO_C_SET_BUF_MEM_EOF_RETURN, -1, std::ptr::null_mut()) };
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
    /// `ptr` must be a memory BIO that stays alive, and is used by nobody
    /// else, for the lifetime chosen for the result.
    pub(crate) unsafe fn new<'a>(ptr: NonNull<sys::BIO>) -> BioRef<'a> {
        BioRef { ptr, _owner: PhantomData }
    }

    /// Append `data`; returns how much was taken (all of it, short of
    /// running out of memory).
    pub(crate) fn write(&self, data: &[u8]) -> usize {
        let mut done = 0;
        while done < data.len() {
            let len = (data.len() - done).min(i32::MAX as usize) as libc::c_int;
            // SAFETY: reads `len` bytes from a live slice into a live BIO.
            let n = unsafe { sys::BIO_write(self.ptr.as_ptr(), data[done..].as_ptr().cast(), len) };
            if n <= 0 {
                break;
            }
            done += n as usize;
        }
        done
    }

    /// Move everything queued into `out`.
    pub(crate) fn drain_into(&self, out: &mut Vec<u8>) {
        loop {
            let pending = self.pending();
            if pending == 0 {
                return;
            }
            let start = out.len();
            out.resize(start + pending, 0);
            let len = pending.min(i32::MAX as usize) as libc::c_int;
            // SAFETY: writes at most `len` bytes into the space just reserved.
            let n = unsafe { sys::BIO_read(self.ptr.as_ptr(), out[start..].as_mut_ptr().cast(), len) };
            out.truncate(start + n.max(0) as usize);
            if n <= 0 {
                return;
            }
        }
    }

    /// Run `f`, an OpenSSL call writing to this BIO, with its flushes
    /// refused while output waits here; returns `f`'s result and whether a
    /// flush was refused. OpenSSL flushes where a flight is complete and
    /// its peer can go on (after a ClientHello, a server's Finished, a
    /// client's Finished, each ticket), and only then does the work that
    /// follows (the application keys): a refused flush makes the call stop
    /// there, so that the flight leaves before that work rather than after.
    pub(crate) fn refusing_flushes<R>(&self, f: impl FnOnce() -> R) -> (R, bool) {
        /// Takes the callback off again, even if `f` unwinds.
        struct Off(NonNull<sys::BIO>);
        impl Drop for Off {
            fn drop(&mut self) {
                // SAFETY: the BIO is live (borrowed by the enclosing call);
                // afterwards it no longer points at the dead `refused`.
                unsafe {
                    super::BIO_set_callback_ex(self.0.as_ptr(), None);
                    super::BIO_set_callback_arg(self.0.as_ptr(), std::ptr::null_mut());
                }
            }
        }
        let refused = Cell::new(false);
        // SAFETY: the argument points at `refused`, which outlives the
        // callback's installation (`Off` removes both before it goes).
        unsafe {
            super::BIO_set_callback_arg(self.ptr.as_ptr(), (&raw const refused).cast_mut().cast());
            super::BIO_set_callback_ex(self.ptr.as_ptr(), Some(refuse_flush));
        }
        let off = Off(self.ptr);
        let r = f();
        drop(off);
        (r, refused.get())
    }

    /// Bytes queued.
    pub(crate) fn pending(&self) -> usize {
        // SAFETY: BIO_CTRL_PENDING on a live BIO takes no pointer.
        let n = unsafe { sys::BIO_ctrl(self.ptr.as_ptr(), BIO_CTRL_PENDING, 0, std::ptr::null_mut()) };
        n.max(0) as usize
    }
}

/// The callback of [`BioRef::refusing_flushes`]: fail a flush (before it
/// happens) while bytes are queued, and note that in the `Cell<bool>` the
/// callback argument points at. Every other operation goes through as is.
unsafe extern "C" fn refuse_flush(
    bio: *mut sys::BIO,
    oper: libc::c_int,
    _argp: *const libc::c_char,
    _len: libc::size_t,
    argi: libc::c_int,
    _argl: libc::c_long,
    ret: libc::c_int,
    _processed: *mut libc::size_t,
) -> libc::c_long {
    if oper != BIO_CB_CTRL || argi != sys::BIO_CTRL_FLUSH {
        return ret.into();
    }
    // SAFETY: `bio` is the live BIO being flushed; this ctrl takes no
    // pointer (and passes through this callback unrefused).
    let pending = unsafe { sys::BIO_ctrl(bio, BIO_CTRL_PENDING, 0, std::ptr::null_mut()) };
    if pending <= 0 {
        return ret.into();
    }
    // SAFETY: while this callback is installed its argument points at the
    // `Cell<bool>` of the `refusing_flushes` call running on this thread.
    unsafe { (*super::BIO_get_callback_arg(bio).cast::<Cell<bool>>()).set(true) };
    0
}
