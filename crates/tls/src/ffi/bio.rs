//! Memory BIOs: the byte queues between an `SSL` and the socket.

use std::ptr::NonNull;

use openssl_sys as sys;

/// `BIO_CTRL_PENDING` (openssl-sys does not export it).
const BIO_CTRL_PENDING: libc::c_int = 10;

/// A memory BIO. Owned (and freed on drop) until handed to an `Ssl` with
/// [`MemBio::into_raw`]; after that the `SSL` owns it and frees it with
/// itself, and the `Ssl` wrapper keeps only the borrowed handle that
/// `into_raw` returns beside the pointer.
#[derive(Debug)]
pub(crate) struct MemBio {
    ptr: NonNull<sys::BIO>,
    owned: bool,
}

// SAFETY: a BIO is plain memory with no thread affinity; the `Ssl` that
// uses it is only ever touched under its connection's engine lock.
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
        Ok(MemBio { ptr, owned: true })
    }

    /// Give up ownership (to `SSL_set_bio`), keeping a borrowed handle.
    pub(crate) fn into_raw(mut self) -> (*mut sys::BIO, MemBio) {
        self.owned = false;
        let raw = self.ptr.as_ptr();
        (raw, MemBio { ptr: self.ptr, owned: false })
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

    /// Bytes queued.
    pub(crate) fn pending(&self) -> usize {
        // SAFETY: BIO_CTRL_PENDING on a live BIO takes no pointer.
        let n = unsafe { sys::BIO_ctrl(self.ptr.as_ptr(), BIO_CTRL_PENDING, 0, std::ptr::null_mut()) };
        n.max(0) as usize
    }
}

impl Drop for MemBio {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: we still own this BIO; it is freed exactly once, here.
            unsafe { sys::BIO_free_all(self.ptr.as_ptr()) };
        }
    }
}
